//! A small typed model of the macros' input that borrows from it, keeping the syn nodes so that
//! any later error can point at the user's own tokens.

use syn::{Data, DeriveInput, Fields, FnArg, Ident, ImplItemFn, LitStr, Member, Type};

use crate::attr::{self, FieldAttrs, Role, SerdeContainer, SerdeField, StoreAttrs};
use crate::case::RenameRule;
use crate::ctxt::Ctxt;

/// The input of `#[derive(Store)]` / `#[derive(Diff)]`.
pub struct Input<'a> {
    pub original: &'a DeriveInput,
    pub ident: &'a Ident,
    pub store: StoreAttrs,
    pub serde: SerdeContainer,
    pub shape: Shape<'a>,
}

/// How the input is diffed.
pub enum Shape<'a> {
    /// A struct with named fields: field by field.
    Named(Vec<Field<'a>>),
    /// A struct with one unnamed field, `struct Text(String)`: serde writes it as its field, so
    /// it is diffed as its field.
    Newtype(Field<'a>),
    /// An enum, a tuple struct of several fields or a unit struct: the whole value, when it
    /// changed.
    Whole,
    /// A union: not diffable.
    Union(&'a syn::token::Union),
}

pub struct Field<'a> {
    pub original: &'a syn::Field,
    /// `self.name`, or `self.0` for a newtype's field.
    pub member: Member,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
    pub serde: SerdeField,
}

impl<'a> Input<'a> {
    pub fn from_syn(cx: &mut Ctxt, input: &'a DeriveInput) -> Self {
        // The struct's attributes first: errors are reported in source order.
        let store = attr::store_attrs(cx, &input.attrs);
        let shape = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Shape::Named(
                    named
                        .named
                        .iter()
                        .enumerate()
                        .map(|(index, field)| Field::from_syn(cx, field, index))
                        .collect(),
                ),
                Fields::Unnamed(unnamed) => match unnamed.unnamed.first() {
                    Some(field) if unnamed.unnamed.len() == 1 => {
                        Shape::Newtype(Field::from_syn(cx, field, 0))
                    }
                    _ => Shape::Whole,
                },
                Fields::Unit => Shape::Whole,
            },
            Data::Enum(_) => Shape::Whole,
            Data::Union(data) => Shape::Union(&data.union_token),
        };
        Input {
            original: input,
            ident: &input.ident,
            store,
            serde: attr::serde_container(&input.attrs),
            shape,
        }
    }

    /// The name clients join by: `#[store(name = "...")]`, or the type's name.
    pub fn store_name(&self) -> String {
        match &self.store.name {
            Some(name) => name.value(),
            None => self.ident.to_string(),
        }
    }
}

impl<'a> Field<'a> {
    /// The field at `index` of its struct.
    fn from_syn(cx: &mut Ctxt, field: &'a syn::Field, index: usize) -> Self {
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::Unnamed(syn::Index {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                span: syn::spanned::Spanned::span(&field.ty),
            }),
        };
        Field {
            original: field,
            member,
            ty: &field.ty,
            attrs: attr::field_attrs(cx, &field.attrs),
            serde: attr::serde_field(&field.attrs),
        }
    }

    /// The key serde_json writes for this field (a named field's: a newtype's field has none).
    pub fn json_key(&self, rename_all: Option<RenameRule>) -> String {
        if let Some(rename) = &self.serde.rename {
            return rename.clone();
        }
        let name = match &self.member {
            Member::Named(ident) => ident.to_string(),
            Member::Unnamed(index) => index.index.to_string(),
        };
        let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
        match rename_all {
            Some(rule) => rule.apply_to_field(&name),
            None => name,
        }
    }
}

/// A method of a `#[storex::mutations]` impl that carries a marker.
pub struct Method {
    pub role: Role,
    /// The marker attribute, for errors about the method as a whole.
    pub marker: syn::Attribute,
    pub sig: syn::Signature,
    pub receiver: Receiver,
    pub args: Vec<Arg>,
}

/// The method's `self`, as far as the rules care.
pub enum Receiver {
    None,
    RefMut,
    /// Anything else (`self`, `&self`, `self: Box<Self>`...), to point at.
    Other(syn::Receiver),
}

/// One argument after `self`.
pub enum Arg {
    Session,
    Params,
    /// A value deserialized from the `data` array.
    Data(Box<Type>),
}

impl Method {
    pub fn new(role: Role, marker: syn::Attribute, method: &ImplItemFn) -> Self {
        let sig = method.sig.clone();
        let receiver = match sig.receiver() {
            None => Receiver::None,
            Some(receiver) => match &*receiver.ty {
                Type::Reference(reference)
                    if reference.mutability.is_some() && is_self(&reference.elem) =>
                {
                    Receiver::RefMut
                }
                _ => Receiver::Other(receiver.clone()),
            },
        };
        let args = sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) => Some(Arg::of_type(&typed.ty)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        Method {
            role,
            marker,
            sig,
            receiver,
            args,
        }
    }

    pub fn is_async(&self) -> bool {
        self.sig.asyncness.is_some()
    }

    pub fn mutation_name(&self) -> Option<&LitStr> {
        match &self.role {
            Role::Mutation(name) => Some(name),
            _ => None,
        }
    }

    /// How many values of the `data` array the method takes.
    pub fn arity(&self) -> usize {
        self.args
            .iter()
            .filter(|arg| matches!(arg, Arg::Data(_)))
            .count()
    }
}

impl Arg {
    /// `&Session` and `&Params` (by the last segment of the path, however imported) are the
    /// join context; every other type is data.
    fn of_type(ty: &Type) -> Self {
        if let Type::Reference(reference) = ty {
            if reference.mutability.is_none() {
                if let Type::Path(path) = &*reference.elem {
                    match path.path.segments.last() {
                        Some(last) if last.ident == "Session" && last.arguments.is_empty() => {
                            return Arg::Session
                        }
                        Some(last) if last.ident == "Params" && last.arguments.is_empty() => {
                            return Arg::Params
                        }
                        _ => {}
                    }
                }
            }
        }
        Arg::Data(Box::new(ty.clone()))
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The input of `#[storex::mutations]`: the impl (with the markers removed, ready to be emitted
/// as the user wrote it otherwise) and its marked methods.
pub struct Impl {
    pub item: syn::ItemImpl,
    pub methods: Vec<Method>,
}

impl Impl {
    /// Removes the markers from `item`'s items, recording each marked method. A marker on
    /// something that is not a method, or two markers on one method, is an error here: the
    /// marker is removed anyway, so that rustc does not add "cannot find attribute" to it.
    pub fn from_syn(cx: &mut Ctxt, mut item: syn::ItemImpl) -> Self {
        let mut methods = Vec::new();
        for impl_item in &mut item.items {
            let (attrs, method) = match impl_item {
                syn::ImplItem::Fn(method) => {
                    let markers = take_markers(&mut method.attrs);
                    let mut markers = markers.into_iter();
                    if let Some(marker) = markers.next() {
                        for extra in markers {
                            cx.error_spanned_by(
                                &extra,
                                "a method has one role: it is either #[init], a #[mutation(\"...\")] or #[terminate]",
                            );
                        }
                        match attr::role(&marker) {
                            Ok(role) => methods.push(Method::new(role, marker, method)),
                            Err(error) => cx.syn_error(error),
                        }
                    }
                    continue;
                }
                syn::ImplItem::Const(item) => (&mut item.attrs, "a const"),
                syn::ImplItem::Type(item) => (&mut item.attrs, "an associated type"),
                syn::ImplItem::Macro(item) => (&mut item.attrs, "a macro call"),
                _ => continue,
            };
            for marker in take_markers(attrs) {
                let name = attr::marker_name(&marker).unwrap_or("mutation");
                cx.error_spanned_by(
                    &marker,
                    format!("#[{name}] belongs on a method of this impl, not on {method}"),
                );
            }
        }
        Impl { item, methods }
    }
}

fn take_markers(attrs: &mut Vec<syn::Attribute>) -> Vec<syn::Attribute> {
    let (markers, rest) = std::mem::take(attrs)
        .into_iter()
        .partition(|attr| attr::marker_name(attr).is_some());
    *attrs = rest;
    markers
}
