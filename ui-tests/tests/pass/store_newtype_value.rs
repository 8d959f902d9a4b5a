// A newtype store over a JSON value: its state is the value itself (a bare string here), and a
// change inside the value is a diff inside it, at paths from the root.
use serde_json::{json, Value};
use storex::{Params, Registry, Session, Store};

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "Ui.Newtype.Text")]
pub struct Text(Value);

#[storex::mutations]
impl Text {
    #[init]
    fn init(params: &Params) -> Self {
        Text(params.get("start").unwrap_or_else(|| json!("abc")))
    }

    #[mutation("set")]
    fn set(&mut self, key: String, value: Value) {
        if let Value::Object(map) = &mut self.0 {
            map.insert(key, value);
        }
    }

    #[mutation("replace")]
    fn replace(&mut self, value: Value) {
        *self = Text(value);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("Ui.Newtype.Text").unwrap();
        let mut text = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(text.state().unwrap(), json!("abc"));
        let applied = text.mutate("replace", &[json!({"x": 1})]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":[],"t":{"x":1}}]));
        let applied = text.mutate("set", &[json!("x"), json!(2)]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":["x"],"t":2}]));
    });
    let _ = storex::mutation!(Text, "set", "x", 3);
    assert_eq!(Text::NAME, "Ui.Newtype.Text");
}
