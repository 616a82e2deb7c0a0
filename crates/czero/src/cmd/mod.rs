//! One module per subcommand.
pub mod invoke;
pub mod local;
pub mod replay;
pub mod run;
pub mod simulate;
pub mod validate;
