//! Ordered transactional key-value store with file_system (fjall), postgres and memory drivers.
