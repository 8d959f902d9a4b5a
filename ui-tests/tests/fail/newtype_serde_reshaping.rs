use storex::Store;

// A newtype's diff is its field's: serde must write it as its field's own `Serialize` does.
#[derive(Store, serde::Serialize, Clone)]
#[serde(into = "String")]
pub struct Title(String);

impl From<Title> for String {
    fn from(title: Title) -> String {
        title.0
    }
}

#[derive(Store, serde::Serialize, Clone)]
pub struct Count(#[serde(serialize_with = "as_text")] i64);

fn as_text<S: serde::Serializer>(count: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(count)
}

#[storex::mutations]
impl Title {
    #[init]
    fn init() -> Self {
        Title(String::new())
    }
}

#[storex::mutations]
impl Count {
    #[init]
    fn init() -> Self {
        Count(0)
    }
}

fn main() {}
