pub mod jsgen;
