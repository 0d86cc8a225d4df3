//! Grading suite of lab 15 (multiplexing).
