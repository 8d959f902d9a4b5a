//! Every rule of the macros in one place; each violation is an error on the offending tokens,
//! and all of them are collected.

use quote::ToTokens;
use syn::{Data, Fields};

use crate::ast::{Arg, Impl, Input, Method, Receiver, Shape};
use crate::attr::Role;
use crate::ctxt::Ctxt;

/// Which derive the input is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    Store,
    Diff,
}

pub fn input(cx: &mut Ctxt, input: &Input<'_>, derive: Derive) {
    let original = input.original;
    if derive == Derive::Store {
        store_shape(cx, input);
        if !original.generics.params.is_empty() {
            cx.error_spanned_by(
                &original.generics,
                "a store cannot be generic: clients join it by one name, so it must be one concrete type",
            );
        }
    }
    if let Shape::Union(union_token) = input.shape {
        if derive == Derive::Diff {
            cx.error_spanned_by(
                union_token,
                "a union cannot be diffed: derive Diff on a struct or an enum",
            );
        }
    }
    for attr in &original.attrs {
        if attr.path().is_ident("storex") {
            cx.error_spanned_by(
                attr,
                "#[storex(...)] belongs on a field; on the struct itself use #[store(name = \"...\")]",
            );
        }
    }
    if let Shape::Named(fields) = &input.shape {
        for (key, span) in &input.serde.reshaping {
            cx.syn_error(syn::Error::new(
                *span,
                format!(
                    "#[serde({key})] changes the JSON shape of `{}`, so its field-by-field diff would not match what serde sends; \
                     remove it, or implement `storex::Diff` by hand",
                    input.ident
                ),
            ));
        }
        for field in fields {
            for attr in &field.original.attrs {
                if attr.path().is_ident("store") {
                    cx.error_spanned_by(
                        attr,
                        "#[store(...)] belongs on the struct; on a field use #[storex(...)]",
                    );
                }
            }
            for (key, span) in &field.serde.reshaping {
                cx.syn_error(syn::Error::new(*span, reshaping_field_message(key)));
            }
        }
    }
}

fn reshaping_field_message(key: &str) -> String {
    let why = match key {
        "flatten" => "moves the field's keys into the parent object, so a diff at the field's own key would not match what serde sends; \
                      remove it (nested structs are diffed field by field anyway)",
        "skip_serializing_if" => "makes the field's key come and go, which a per-field diff does not follow; \
                                  remove it (an `Option` field is sent as `null`)",
        _ => "makes the field's JSON differ from its type's own `Serialize`, which the diff uses; \
              remove it, or give the field a newtype whose own `Serialize` and `Diff` write that JSON",
    };
    format!("#[serde({key})] cannot be used in a diffed struct: it {why}")
}

fn store_shape(cx: &mut Ctxt, input: &Input<'_>) {
    const MESSAGE: &str =
        "only structs with named fields can be stores: `struct Counter { counter: i64 }`";
    match &input.original.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(_) => {}
            Fields::Unnamed(fields) => cx.error_spanned_by(fields, MESSAGE),
            Fields::Unit => cx.error_spanned_by(input.ident, MESSAGE),
        },
        Data::Enum(data) => cx.error_spanned_by(data.enum_token, MESSAGE),
        Data::Union(data) => cx.error_spanned_by(data.union_token, MESSAGE),
    }
}

pub fn mutations_args(cx: &mut Ctxt, args: proc_macro2::TokenStream) {
    if !args.is_empty() {
        cx.error_spanned_by(args, "#[storex::mutations] takes no arguments");
    }
}

pub fn impl_block(cx: &mut Ctxt, block: &Impl) {
    let item = &block.item;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "#[storex::mutations] goes on the store's own impl (`impl Counter { .. }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "a store cannot be generic: #[storex::mutations] needs an impl of one concrete store type",
        );
    }
    let mut init = None;
    let mut terminate = None;
    let mut names: Vec<&Method> = Vec::new();
    for method in &block.methods {
        self::method(cx, method);
        match &method.role {
            Role::Init => once(cx, &mut init, method, "#[init]"),
            Role::Terminate => once(cx, &mut terminate, method, "#[terminate]"),
            Role::Mutation(name) => {
                let first = names
                    .iter()
                    .find(|other| other.mutation_name().map(|n| n.value()) == Some(name.value()));
                match first {
                    Some(first) => cx.error_spanned_by(
                        name,
                        format!(
                            "two mutations are named {:?}: `fn {}` and `fn {}`; each mutation of a store needs its own name",
                            name.value(),
                            first.sig.ident,
                            method.sig.ident
                        ),
                    ),
                    None => names.push(method),
                }
            }
        }
    }
    if init.is_none() && item.trait_.is_none() {
        cx.error_spanned_by(
            &item.self_ty,
            "this store has no #[init] method; add one that creates the state, e.g. \
             `#[init] fn init() -> Self { .. }` (it may be async, take `&Session` and `&Params`, \
             and return `Init<Self>` or a `Result`)",
        );
    }
}

fn once<'a>(cx: &mut Ctxt, seen: &mut Option<&'a Method>, method: &'a Method, what: &str) {
    match seen {
        Some(first) => cx.error_spanned_by(
            &method.marker,
            format!(
                "a store has one {what} method, and `fn {}` is already it",
                first.sig.ident
            ),
        ),
        None => *seen = Some(method),
    }
}

fn method(cx: &mut Ctxt, method: &Method) {
    let sig = &method.sig;
    let type_params = sig
        .generics
        .params
        .iter()
        .any(|param| !matches!(param, syn::GenericParam::Lifetime(_)));
    if type_params {
        cx.error_spanned_by(
            &sig.generics,
            "a store's methods cannot have type parameters: the macro calls them with concrete types",
        );
    }
    match &method.role {
        Role::Init => {
            if let Some(receiver) = sig.receiver() {
                cx.error_spanned_by(
                    receiver,
                    "#[init] creates the state, so it takes no `self`; its arguments may be `&Session` and `&Params`",
                );
            }
            context_args_only(cx, method, "#[init]");
        }
        Role::Mutation(_) => receiver_ref_mut(cx, method, "a mutation"),
        Role::Terminate => {
            receiver_ref_mut(cx, method, "#[terminate]");
            context_args_only(cx, method, "#[terminate]");
        }
    }
}

fn receiver_ref_mut(cx: &mut Ctxt, method: &Method, what: &str) {
    match &method.receiver {
        Receiver::RefMut => {}
        Receiver::None => cx.error_spanned_by(
            &method.sig.ident,
            format!(
                "{what} works on the state, so it takes `&mut self` first: `fn {}(&mut self, ..)`",
                method.sig.ident
            ),
        ),
        Receiver::Other(receiver) => {
            let found = receiver.to_token_stream().to_string().replace("& ", "&");
            cx.error_spanned_by(
                receiver,
                format!("{what} takes `&mut self`, not `{found}`: it changes the state in place"),
            );
        }
    }
}

fn context_args_only(cx: &mut Ctxt, method: &Method, what: &str) {
    for arg in &method.args {
        if let Arg::Data(ty) = arg {
            cx.error_spanned_by(
                ty,
                format!(
                    "{what} may take only `&Session` and `&Params` (in any order, each optional); \
                     a client sends no data to it"
                ),
            );
        }
    }
}
