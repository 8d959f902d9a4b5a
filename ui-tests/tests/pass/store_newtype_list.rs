// A newtype store over a tracked list: a mutation that writes one row is tracked through the
// newtype (no copy of the list), and its diff is at the row's index from the root. A durable
// newtype store is made again from its saved JSON, the inner list's.
use serde::{Deserialize, Serialize};
use serde_json::json;
use storex::{Diff, List, Params, Registry, Session, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Diff)]
pub struct Row {
    title: String,
    score: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Store)]
#[store(name = "Ui.Newtype.Rows", durable)]
pub struct Rows(List<Row>);

#[storex::mutations]
impl Rows {
    #[init]
    fn init() -> Self {
        Rows((0..3).map(|index| Row { title: format!("row {index}"), score: 0 }).collect())
    }

    #[mutation("vote")]
    fn vote(&mut self, index: usize) -> Result<(), String> {
        let row = self.0.get_mut(index).ok_or_else(|| format!("no row {index}"))?;
        row.score += 1;
        Ok(())
    }
}

fn main() {
    assert!(<Rows as Diff>::TRACKED, "a newtype over a List is tracked");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("Ui.Newtype.Rows").unwrap();
        assert!(entry.is_durable());
        let mut rows = entry.join(Session::new("s1"), Params::default()).await.unwrap();
        assert_eq!(rows.state().unwrap()[2], json!({"title": "row 2", "score": 0}));
        let applied = rows.mutate("vote", &[json!(2)]).await.unwrap();
        assert_eq!(serde_json::to_value(&applied.diff).unwrap(), json!([{"a":"u","p":[2,"score"],"t":1}]));
        assert!(rows.mutate("vote", &[json!(7)]).await.is_err());
    });
}
