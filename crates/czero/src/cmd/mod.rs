//! One module per subcommand.
pub mod local;
pub mod run;
pub mod validate;
pub mod simulate;
pub mod invoke;
