//! voxbridge engine: SIP signalling, call lifecycle, configuration and the CLI.
