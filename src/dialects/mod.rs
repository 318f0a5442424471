//! The legacy wire formats, one folder each. A dialect decodes its requests into the
//! services' typed inputs, writes their outcomes (and every error) in its own shapes,
//! and exports its routes; it knows nothing of storage.

pub mod capillary;
pub mod summit;
pub mod twofactor;
