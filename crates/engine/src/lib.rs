//! The rivet-engine binary and library: loads the config, opens the store and bus, serves the engine's listeners.
