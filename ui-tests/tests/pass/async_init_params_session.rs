// Async init taking params and session (in either order), returning a key or refusing;
// async mutations with session, params and data arguments.
use serde_json::json;
use storex::{Init, JoinError, Params, Registry, Reply, Session, Store};

#[derive(Store, serde::Serialize, Clone)]
#[store(name = "Pass.Chat")]
struct Chat {
    user: String,
    messages: Vec<String>,
}

#[storex::mutations]
impl Chat {
    #[init]
    async fn init(params: &Params, session: &Session) -> Result<Init<Self>, String> {
        tokio::task::yield_now().await;
        let Some(user) = params.get::<String>("user") else {
            return Err(format!("Unauthorized session {}", session.id()));
        };
        Ok(Init::with_key(Chat { user: user.clone(), messages: Vec::new() }, user))
    }

    #[mutation("say")]
    async fn say(&mut self, session: &Session, text: String, times: usize) -> Reply<usize> {
        tokio::task::yield_now().await;
        for _ in 0..times {
            self.messages.push(format!("{}@{}: {text}", self.user, session.id()));
        }
        Reply(self.messages.len())
    }

    #[mutation("rename")]
    fn rename(&mut self, params: &Params, suffix: String) {
        self.user = format!("{}{suffix}", params.get::<String>("prefix").unwrap_or_default());
    }

    #[mutation("room")]
    async fn room(&mut self, params: &Params) -> Result<Reply<Option<u32>>, std::fmt::Error> {
        Ok(Reply(params.get("room")))
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let entry = Registry::global().unwrap().get("Pass.Chat").unwrap();
        let refused = entry.join(Session::new("s0"), Params::default()).await;
        assert_eq!(refused.err(), Some(JoinError::Refused("Unauthorized session s0".into())));

        let params = Params::new(json!({"user": "ada", "room": 7}));
        let mut store = entry.join(Session::new("s1"), params).await.unwrap();
        assert_eq!(store.key(), Some("ada"));
        let applied = store.mutate("say", &[json!("hi"), json!(2)]).await.unwrap();
        assert_eq!(applied.reply, Some(json!(2)));
        assert_eq!(
            serde_json::to_value(&applied.diff).unwrap(),
            json!([
                {"a":"i","p":["messages",0],"t":"ada@s1: hi"},
                {"a":"i","p":["messages",1],"t":"ada@s1: hi"}
            ])
        );
        let applied = store.mutate("room", &[]).await.unwrap();
        assert_eq!(applied.reply, Some(json!(7)));
    });
    let table = <Chat as storex::Mutations>::MUTATIONS;
    assert_eq!((table[0].name, table[0].arity, table[0].is_async), ("say", 2, true));
    assert_eq!((table[1].name, table[1].arity, table[1].is_async), ("rename", 1, false));
    assert_eq!(Chat::NAME, "Pass.Chat");
}
