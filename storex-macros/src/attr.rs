//! Attribute parsing into plain data: `#[store(...)]`, `#[storex(...)]`, the serde attributes
//! that decide JSON keys, and the method markers `#[init]`, `#[mutation("...")]`, `#[terminate]`.
//! Unknown keys are errors, never ignored (serde's own keys excepted: serde_derive checks those).

use proc_macro2::{Span, TokenStream};
use syn::parse::ParseStream;
use syn::{Attribute, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

/// `#[store(...)]` on a store struct.
#[derive(Default)]
pub struct StoreAttrs {
    pub name: Option<LitStr>,
    /// `#[store(durable)]`: its instances are saved in durable sessions and made again from
    /// their saved state on another node (the store must be `serde::Deserialize`).
    pub durable: bool,
    /// `#[store(ts)]`: with storex's `ts` feature, the store's TypeScript types are exported
    /// by `storex::ts` (the state and every type of its mutations must be `ts_rs::TS`).
    pub ts: bool,
}

pub const STORE_KEYS: &str = "`name = \"...\"`, `durable`, `ts`";

pub fn store_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> StoreAttrs {
    let mut parsed = StoreAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("store")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                if parsed.name.is_some() {
                    cx.error_spanned_by(&name, "the store's name is given twice");
                } else if name.value().is_empty() {
                    cx.error_spanned_by(&name, "a store's name cannot be empty");
                } else {
                    parsed.name = Some(name);
                }
                Ok(())
            } else if meta.path.is_ident("durable") {
                if parsed.durable {
                    return Err(meta.error("`durable` is given twice"));
                }
                parsed.durable = true;
                Ok(())
            } else if meta.path.is_ident("ts") {
                if parsed.ts {
                    return Err(meta.error("`ts` is given twice"));
                }
                parsed.ts = true;
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown key `{}` in #[store(...)]; the known keys are: {STORE_KEYS}",
                    path_text(&meta.path)
                )))
            }
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
    parsed
}

/// `#[storex(...)]` on a field.
#[derive(Default)]
pub struct FieldAttrs {
    /// `#[storex(replace)]`: send the whole value when it changed instead of diffing inside it.
    pub replace: bool,
}

pub const FIELD_KEYS: &str = "`replace`";

pub fn field_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut parsed = FieldAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("storex")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("replace") {
                parsed.replace = true;
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown key `{}` in #[storex(...)]; the known keys are: {FIELD_KEYS}",
                    path_text(&meta.path)
                )))
            }
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
    parsed
}

/// What the serde attributes of a struct say about its JSON keys.
#[derive(Default)]
pub struct SerdeContainer {
    pub rename_all: Option<RenameRule>,
    /// Keys that change the struct's JSON shape (`transparent`, `tag`, `into`...), with their span.
    pub reshaping: Vec<(String, Span)>,
}

/// What the serde attributes of a field say about its JSON key.
#[derive(Default)]
pub struct SerdeField {
    pub rename: Option<String>,
    /// `skip` / `skip_serializing`: the field is not in the JSON, so it is not diffed either.
    pub skipped: bool,
    /// Keys that make the field's JSON differ from its type's own `Serialize`.
    pub reshaping: Vec<(String, Span)>,
}

const CONTAINER_RESHAPING: &[&str] = &[
    "transparent",
    "tag",
    "content",
    "untagged",
    "into",
    "remote",
];
const FIELD_RESHAPING: &[&str] = &[
    "flatten",
    "skip_serializing_if",
    "serialize_with",
    "with",
    "getter",
];

pub fn serde_container(attrs: &[Attribute]) -> SerdeContainer {
    let mut parsed = SerdeContainer::default();
    for_each_serde_key(attrs, |key, span, value| match key.as_str() {
        "rename_all" => {
            if let Some(rule) = value.as_deref().and_then(RenameRule::from_name) {
                parsed.rename_all = Some(rule);
            }
        }
        _ if CONTAINER_RESHAPING.contains(&key.as_str()) => parsed.reshaping.push((key, span)),
        _ => {}
    });
    parsed
}

pub fn serde_field(attrs: &[Attribute]) -> SerdeField {
    let mut parsed = SerdeField::default();
    for_each_serde_key(attrs, |key, span, value| match key.as_str() {
        "rename" => parsed.rename = value,
        "skip" | "skip_serializing" => parsed.skipped = true,
        _ if FIELD_RESHAPING.contains(&key.as_str()) => parsed.reshaping.push((key, span)),
        _ => {}
    });
    parsed
}

/// Calls `f(key, span, serialize_value)` for each key of each `#[serde(...)]` attribute. The value
/// is the string of `key = "..."` or of `key(serialize = "...")`. Syntax serde would reject is
/// skipped silently: serde_derive reports it better.
fn for_each_serde_key(attrs: &[Attribute], mut f: impl FnMut(String, Span, Option<String>)) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = path_text(&meta.path);
            let span = syn::spanned::Spanned::span(&meta.path);
            let mut value = None;
            if meta.input.peek(Token![=]) {
                let expr: syn::Expr = meta.value()?.parse()?;
                value = string_of(&expr);
            } else if meta.input.peek(syn::token::Paren) {
                // `rename(serialize = "a", deserialize = "b")`: only the serialize side matters.
                meta.parse_nested_meta(|inner| {
                    let expr: syn::Expr = inner.value()?.parse()?;
                    if inner.path.is_ident("serialize") {
                        value = string_of(&expr);
                    }
                    Ok(())
                })?;
            }
            f(key, span, value);
            Ok(())
        });
    }
}

fn string_of(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Some(lit.value()),
        _ => None,
    }
}

/// The role a method marker gives a method of a `#[storex::mutations]` impl.
pub enum Role {
    Init,
    Mutation(LitStr),
    Terminate,
}

pub const MARKERS: &[&str] = &["init", "mutation", "terminate"];

/// If `attr` is one of the method markers, its name (`"init"`, ...), whether or not it parses.
pub fn marker_name(attr: &Attribute) -> Option<&'static str> {
    MARKERS
        .iter()
        .copied()
        .find(|marker| attr.path().is_ident(marker))
}

/// Parses a marker attribute (one [`marker_name`] recognised) into the role it gives.
pub fn role(attr: &Attribute) -> syn::Result<Role> {
    match marker_name(attr) {
        Some("mutation") => mutation_name(attr).map(Role::Mutation),
        Some(marker) => {
            if let syn::Meta::Path(_) = attr.meta {
                Ok(if marker == "init" {
                    Role::Init
                } else {
                    Role::Terminate
                })
            } else {
                Err(syn::Error::new_spanned(
                    &attr.meta,
                    format!("#[{marker}] takes no arguments: write `#[{marker}]`"),
                ))
            }
        }
        None => Err(syn::Error::new_spanned(attr, "not a storex marker")),
    }
}

const MUTATION_USAGE: &str = "write the name clients commit, e.g. `#[mutation(\"increase\")]`";

fn mutation_name(attr: &Attribute) -> syn::Result<LitStr> {
    let list = match &attr.meta {
        syn::Meta::List(list) => list,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("#[mutation] needs the mutation's name: {MUTATION_USAGE}"),
            ))
        }
    };
    if list.tokens.is_empty() {
        return Err(syn::Error::new_spanned(
            list,
            format!("#[mutation] needs the mutation's name: {MUTATION_USAGE}"),
        ));
    }
    list.parse_args_with(|input: ParseStream<'_>| {
        let name: LitStr = match input.parse() {
            Ok(name) => name,
            Err(_) => {
                let found: TokenStream = input.parse()?;
                return Err(syn::Error::new_spanned(
                    found,
                    format!("the mutation's name must be a string literal: {MUTATION_USAGE}"),
                ));
            }
        };
        if name.value().is_empty() {
            return Err(syn::Error::new_spanned(
                &name,
                format!("a mutation's name cannot be empty: {MUTATION_USAGE}"),
            ));
        }
        // A trailing comma is fine; anything after it is not.
        let _: Option<Token![,]> = input.parse()?;
        if !input.is_empty() {
            let rest: TokenStream = input.parse()?;
            return Err(syn::Error::new_spanned(
                rest,
                "unexpected arguments: #[mutation(...)] takes only the mutation's name, e.g. `#[mutation(\"increase\")]`",
            ));
        }
        Ok(name)
    })
}

/// A path as the user wrote it, without spaces: `serde::rename`.
pub fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let prefix = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{prefix}{}", segments.join("::"))
}
