//! `my.request` (SPEC §4): typed options, the encoding of a request, the
//! flow across redirects, and the decoding of the result.
//!
//! | module | job |
//! |---|---|
//! | [`options`] | `RequestOptions`, `Method`, `DataType`, `Data` |
//! | [`prepare`] | options → the exact request on the wire |
//! | [`flow`] | one call across redirects, with its deadline |
//! | [`buffers`] | a response's buffers recycled for the next call (`request_into`) |
//! | [`profile`] | the timing profile of a request |
//! | [`response`] | status classification, `dataType` decoding, the JSON shape |

pub mod buffers;
pub mod flow;
pub mod options;
pub mod prepare;
pub mod profile;
pub mod response;

pub use buffers::{ResponseBuffers, KEPT_RESPONSE_BODY_MAX};
pub use flow::{RequestFlow, Step};
pub use options::{Data, DataType, Method, RequestOptions, DEFAULT_TIMEOUT};
pub use prepare::{PreparedRequest, WireView};
pub use profile::Profile;
pub use response::{BodyCollector, Response, ResponseData};
