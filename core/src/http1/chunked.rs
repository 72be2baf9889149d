//! Chunked transfer-coding decoder (stub).
