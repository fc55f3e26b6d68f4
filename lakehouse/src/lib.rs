//! cemflow-lakehouse
