//! The invoker Lambda's `bootstrap`.
fn main() {}
