//! One module per subcommand.

pub mod flows;
