//! serde's `rename_all` rules for field names: the diff path must name the key serde_json writes.

/// A `#[serde(rename_all = "...")]` rule, as serde applies it to struct fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    /// The spellings serde accepts, in the order its documentation lists them.
    pub const NAMES: &'static [(&'static str, RenameRule)] = &[
        ("lowercase", RenameRule::Lower),
        ("UPPERCASE", RenameRule::Upper),
        ("PascalCase", RenameRule::Pascal),
        ("camelCase", RenameRule::Camel),
        ("snake_case", RenameRule::Snake),
        ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
        ("kebab-case", RenameRule::Kebab),
        ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, rule)| *rule)
    }

    /// The JSON key of a field named `field` (a snake_case Rust identifier) under this rule.
    pub fn apply_to_field(self, field: &str) -> String {
        match self {
            // Field names are snake_case already: these rules leave them as they are.
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
            RenameRule::Pascal => words_capitalized(field),
            RenameRule::Camel => {
                let pascal = words_capitalized(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
        }
    }
}

/// Drops the underscores of `field` and upper-cases the first letter of each word.
fn words_capitalized(field: &str) -> String {
    field
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn field_names_follow_serde() {
        let cases = [
            ("lowercase", "user_name", "user_name"),
            ("UPPERCASE", "user_name", "USER_NAME"),
            ("PascalCase", "user_name", "UserName"),
            ("camelCase", "user_name", "userName"),
            ("snake_case", "user_name", "user_name"),
            ("SCREAMING_SNAKE_CASE", "user_name", "USER_NAME"),
            ("kebab-case", "user_name", "user-name"),
            ("SCREAMING-KEBAB-CASE", "user_name", "USER-NAME"),
            ("camelCase", "counter", "counter"),
            ("PascalCase", "a_b_c", "ABC"),
        ];
        for (rule, field, expected) in cases {
            let Some(parsed) = RenameRule::from_name(rule) else {
                panic!("{rule} is one of serde's rules");
            };
            assert_eq!(parsed.apply_to_field(field), expected, "{rule} {field}");
        }
        assert_eq!(RenameRule::from_name("Camel"), None);
    }
}
