//! The compile-time check of `mutation!`: a `const fn` that tells why a store has no mutation of
//! a name taking that many arguments. Reached only through `__private`.

/// A compile-time error message of `mutation!`, built by `check_mutation` in a fixed buffer
/// because a const panic takes only a `&str`.
#[derive(Debug, Clone, Copy)]
pub struct CheckMessage {
    bytes: [u8; CheckMessage::CAPACITY],
    len: usize,
}

impl CheckMessage {
    const CAPACITY: usize = 2048;

    const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }

    const fn push(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut index = 0;
        while index < text.len() && self.len < Self::CAPACITY {
            self.bytes[self.len] = text[index];
            self.len += 1;
            index += 1;
        }
        self
    }

    const fn push_count(self, count: usize) -> Self {
        let mut digits = [0u8; 20];
        let (mut rest, mut start) = (count, digits.len());
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut this = self;
        while start < digits.len() && this.len < Self::CAPACITY {
            this.bytes[this.len] = digits[start];
            this.len += 1;
            start += 1;
        }
        this
    }

    /// The message; a message longer than the buffer is cut on a character boundary.
    pub const fn as_str(&self) -> &str {
        let (written, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(written) {
            Ok(text) => text,
            Err(error) => match core::str::from_utf8(written.split_at(error.valid_up_to()).0) {
                Ok(text) => text,
                Err(_) => "",
            },
        }
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Used by `mutation!` at compile time: why the store named `store` (Rust type `type_name`) has
/// no mutation `name` taking `arity` arguments, or `None` when it has one.
pub const fn check_mutation(
    store: &str,
    type_name: &str,
    mutations: &[crate::store::MutationInfo],
    name: &str,
    arity: usize,
) -> Option<CheckMessage> {
    let mut index = 0;
    while index < mutations.len() {
        let info = mutations[index];
        if same(info.name, name) {
            if info.arity == arity {
                return None;
            }
            let message = CheckMessage::new()
                .push("mutation \"")
                .push(name)
                .push("\" of store ")
                .push(store)
                .push(" (type ")
                .push(type_name)
                .push(") takes ")
                .push_count(info.arity)
                .push(if info.arity == 1 {
                    " argument, "
                } else {
                    " arguments, "
                })
                .push_count(arity)
                .push(" given");
            return Some(message);
        }
        index += 1;
    }
    let mut message = CheckMessage::new()
        .push("no mutation \"")
        .push(name)
        .push("\" in store ")
        .push(store)
        .push(" (type ")
        .push(type_name)
        .push(")");
    if mutations.is_empty() {
        return Some(message.push("; it has no mutations"));
    }
    message = message.push("; its mutations are: ");
    let mut index = 0;
    while index < mutations.len() {
        if index > 0 {
            message = message.push(", ");
        }
        message = message.push("\"").push(mutations[index].name).push("\"");
        index += 1;
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::check_mutation;
    use crate::store::MutationInfo;

    const TABLE: &[MutationInfo] = &[
        MutationInfo {
            name: "increase",
            arity: 0,
            is_async: false,
        },
        MutationInfo {
            name: "set",
            arity: 1,
            is_async: true,
        },
    ];

    fn check(name: &str, arity: usize) -> Option<String> {
        check_mutation("App.Counter", "Counter", TABLE, name, arity)
            .map(|message| message.as_str().to_owned())
    }

    #[test]
    fn known_names_with_their_arity_pass() {
        assert_eq!(check("increase", 0), None);
        assert_eq!(check("set", 1), None);
    }

    #[test]
    fn messages_name_the_store_and_its_mutations() {
        assert_eq!(
            check("increse", 0).as_deref(),
            Some(
                r#"no mutation "increse" in store App.Counter (type Counter); its mutations are: "increase", "set""#
            )
        );
        assert_eq!(
            check("set", 12).as_deref(),
            Some(
                r#"mutation "set" of store App.Counter (type Counter) takes 1 argument, 12 given"#
            )
        );
        assert_eq!(
            check("increase", 1).as_deref(),
            Some(
                r#"mutation "increase" of store App.Counter (type Counter) takes 0 arguments, 1 given"#
            )
        );
        let none = check_mutation("S", "S", &[], "x", 0).map(|m| m.as_str().to_owned());
        assert_eq!(
            none.as_deref(),
            Some(r#"no mutation "x" in store S (type S); it has no mutations"#)
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let name = "é".repeat(3000);
        let message = check_mutation("S", "S", TABLE, &name, 0);
        let text = message.as_ref().map(|m| m.as_str()).unwrap_or_default();
        assert!(text.starts_with("no mutation \"éé"));
        assert!(text.len() <= 2048 && text.len() >= 2046, "{}", text.len());
    }
}
