//! Actor-host (envoy) protocol wire types and BARE codec, versions 8 and 6.
