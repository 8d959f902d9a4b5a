// A store marked `#[store(ts)]`: borrowed replies, async mutations, `Self` in an argument,
// context arguments and raw identifiers all describe (`with`, which TypeScript reserves, is
// labelled `with_`); the declaration lists them in order.
use serde::{Deserialize, Serialize};
use storex::{Params, Reply, Session, Store};
use ts_rs::TS;

#[derive(Store, TS, Serialize, Deserialize, Clone, PartialEq)]
#[store(name = "Ui.Typed", ts)]
pub struct Typed {
    text: String,
    count: u32,
}

#[storex::mutations]
impl Typed {
    #[init]
    fn init() -> Self {
        Typed { text: String::new(), count: 0 }
    }

    #[mutation("text")]
    fn text(&mut self) -> Reply<&str> {
        Reply("text")
    }

    #[mutation("replace")]
    async fn replace(&mut self, session: &Session, with: Self, params: &Params) -> Result<(), String> {
        let _ = (session, params);
        *self = with;
        Ok(())
    }

    #[mutation("type")]
    fn r#type(&mut self, r#type: Vec<Option<u8>>) -> Result<Reply<u32>, String> {
        self.count = r#type.len() as u32;
        Ok(Reply(self.count))
    }
}

fn main() {
    let text = storex::ts::declaration::<Typed>(&storex::ts::config("out"));
    assert!(text.contains(r#""text": { args: []; reply: string };"#), "{text}");
    assert!(text.contains(r#""replace": { args: [with_: Typed]; reply: undefined };"#), "{text}");
    assert!(text.contains(r#""type": { args: [type: Array<number | null>]; reply: number };"#), "{text}");
}
