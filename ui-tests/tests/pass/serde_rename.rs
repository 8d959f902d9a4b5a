// The diff names the keys serde writes: rename_all, rename, raw identifiers, and skipped fields.
use serde::Serialize;
use serde_json::json;
use storex::{Diff, Params, Registry, Session, Store};

#[derive(Serialize, Clone, PartialEq, Diff)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
struct Inner {
    some_value: u8,
}

#[derive(Store, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Profile {
    user_name: String,
    #[serde(rename = "E-Mail")]
    email_address: String,
    r#type: u8,
    #[serde(skip)]
    secret: String,
    inner: Inner,
}

#[storex::mutations]
impl Profile {
    #[init]
    fn init() -> Self {
        Profile {
            user_name: "ada".into(),
            email_address: "ada@example.com".into(),
            r#type: 0,
            secret: "s3cr3t".into(),
            inner: Inner { some_value: 0 },
        }
    }

    #[mutation("change")]
    fn change(&mut self) {
        self.user_name = "grace".into();
        self.email_address = "grace@example.com".into();
        self.r#type = 1;
        self.secret = "other".into();
        self.inner.some_value = 1;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("Profile").unwrap();
        let mut store = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        let mut state = store.state().unwrap();
        let applied = store.mutate("change", &[]).await.unwrap();
        assert_eq!(
            serde_json::to_value(&applied.diff).unwrap(),
            json!([
                {"a":"u","p":["userName"],"t":"grace"},
                {"a":"u","p":["E-Mail"],"t":"grace@example.com"},
                {"a":"u","p":["type"],"t":1},
                {"a":"u","p":["inner","SOME-VALUE"],"t":1}
            ])
        );
        // Applied as a client does, the diff gives exactly what serde writes.
        storex::diff::apply(&mut state, &applied.diff).unwrap();
        assert_eq!(state, store.state().unwrap());
    });
}
