//! Nexus model providers.
