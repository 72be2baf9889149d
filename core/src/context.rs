//! The app context (SPEC §3).
pub struct AppContext;
pub struct AppContextBuilder;
