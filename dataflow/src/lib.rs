//! cemflow-dataflow
