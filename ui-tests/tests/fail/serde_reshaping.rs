use storex::Store;

#[derive(serde::Serialize, Clone, storex::Diff)]
pub struct Inner {
    x: i64,
}

#[derive(Store, serde::Serialize, Clone)]
#[serde(tag = "type")]
pub struct Board {
    #[serde(flatten)]
    inner: Inner,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(serialize_with = "as_text")]
    count: i64,
}

fn as_text<S: serde::Serializer>(count: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(count)
}

#[storex::mutations]
impl Board {
    #[init]
    fn init() -> Self {
        Board { inner: Inner { x: 0 }, note: None, count: 0 }
    }
}

fn main() {}
