//! The parsers the `head` and `validators` fuzz targets feed directly (the
//! product targets go through the whole session instead).

pub use crate::app::statics::{
    MAX_RANGES, RangeAnswer, Validators, evaluate, if_range_holds, range_answer,
};
pub use crate::http::Limits;
pub use crate::http::semantics;
pub use crate::http::{HeadScanner, parse_head};
