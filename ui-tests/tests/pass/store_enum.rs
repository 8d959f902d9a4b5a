// An enum store: its JSON is serde's for the enum, and a mutation that changes it sends it
// whole, at the root (`"p": []`); a mutation that leaves it equal sends nothing. It can be
// durable and named like any store.
use serde::{Deserialize, Serialize};
use serde_json::json;
use storex::{Params, Registry, Session, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Store)]
#[store(name = "Ui.Enum.Phase", durable)]
pub enum Phase {
    Idle,
    Loading { progress: u8 },
    Done,
}

#[storex::mutations]
impl Phase {
    #[init]
    fn init() -> Self {
        Phase::Idle
    }

    #[mutation("load")]
    fn load(&mut self, progress: u8) {
        *self = Phase::Loading { progress };
    }

    #[mutation("finish")]
    async fn finish(&mut self) -> Result<(), String> {
        match self {
            Phase::Loading { .. } => {
                *self = Phase::Done;
                Ok(())
            }
            _ => Err("nothing is loading".into()),
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("Ui.Enum.Phase").unwrap();
        assert!(entry.is_durable());
        let mut phase = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(phase.state().unwrap(), json!("Idle"));
        let applied = phase.mutate("load", &[json!(10)]).await.unwrap();
        assert_eq!(
            serde_json::to_value(&applied.diff).unwrap(),
            json!([{"a":"u","p":[],"t":{"Loading":{"progress":10}}}])
        );
        let applied = phase.mutate("load", &[json!(10)]).await.unwrap();
        assert!(applied.diff.is_empty());
        let applied = phase.mutate("finish", &[]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":[],"t":"Done"}]));
        assert!(phase.mutate("finish", &[]).await.is_err());
    });
    let _ = storex::mutation!(Phase, "load", 50);
    assert_eq!(Phase::NAME, "Ui.Enum.Phase");
}
