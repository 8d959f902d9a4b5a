//! Two store types registered under one name: the registry refuses to build, naming both.

// A test that cannot unwrap has failed: panicking is how it reports.
#![allow(clippy::unwrap_used)]

use serde::Serialize;
use storex::{RegistryError, Store};

#[derive(Store, Serialize, Clone)]
#[store(name = "Duplicate.Store")]
struct First {
    value: i64,
}

#[storex::mutations]
impl First {
    #[init]
    fn init() -> Self {
        First { value: 0 }
    }
}

#[derive(Store, Serialize, Clone)]
#[store(name = "Duplicate.Store")]
struct Second {
    value: i64,
}

#[storex::mutations]
impl Second {
    #[init]
    fn init() -> Self {
        Second { value: 0 }
    }
}

#[test]
fn the_global_registry_reports_both_types() {
    let error = storex::Registry::global().unwrap_err();
    assert_eq!(
        error,
        RegistryError::DuplicateName {
            name: "Duplicate.Store",
            first: "duplicate_names::First",
            second: "duplicate_names::Second",
        }
    );
    assert!(error
        .to_string()
        .contains("`duplicate_names::First` and `duplicate_names::Second`"));
}
