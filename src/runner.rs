//! Runs experiments of a session and reports through a progress sink.
