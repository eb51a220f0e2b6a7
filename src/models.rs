//! One module per method.
