//! cemflow-queries
