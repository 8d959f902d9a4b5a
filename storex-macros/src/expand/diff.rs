//! `#[derive(Diff)]` and `#[derive(Store)]`: the diff (field by field, the field's own for a
//! newtype, or whole), the store's name and its registration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Field, Input, Shape};

/// `impl Diff`: field by field for structs with named fields, the field's own for a newtype,
/// the whole value otherwise.
pub fn diff_impl(input: &Input<'_>) -> TokenStream {
    let methods = match &input.shape {
        Shape::Newtype(field) => newtype_tracking(input, field),
        _ => tracking(input),
    };
    diff_impl_with(input, diff_body(input), methods)
}

/// How a field takes part in a transaction.
enum Kept {
    /// Its own mark (`Diff::begin`): recorded writes if its type tracks them, else a copy.
    Marked,
    /// A copy, compared whole (`#[storex(replace)]`).
    Whole,
    /// A copy, never sent (`#[serde(skip)]`): only a rollback needs it.
    Hidden,
}

/// The transaction methods of a struct with named fields and no generics: each field is
/// marked on its own, so that a tracked collection anywhere in the struct's fields records
/// its writes rather than being copied. A struct none of whose fields tracks anything
/// (`TRACKED` is false) is copied whole, as before. Generic structs keep the default (a copy).
fn tracking(input: &Input<'_>) -> TokenStream {
    let Shape::Named(fields) = &input.shape else {
        return TokenStream::new();
    };
    if !input.original.generics.params.is_empty() {
        return TokenStream::new();
    }
    let p = quote!(::storex::__private);
    let rename_all = input.serde.rename_all;
    let kept: Vec<Kept> = fields
        .iter()
        .map(|field| {
            if field.serde.skipped {
                Kept::Hidden
            } else if field.attrs.replace {
                Kept::Whole
            } else {
                Kept::Marked
            }
        })
        .collect();
    let vars: Vec<_> = (0..fields.len())
        .map(|index| quote::format_ident!("__storex_mark{}", index))
        .collect();
    let mut tracked = Vec::new();
    let mut mark_tys = Vec::new();
    let mut begins = Vec::new();
    let mut since = Vec::new();
    let mut settle = Vec::new();
    let mut back = Vec::new();
    let mut undo = Vec::new();
    let mut restore = Vec::new();
    let mut commit = Vec::new();
    for ((field, kept), var) in fields.iter().zip(&kept).zip(&vars) {
        let member = &field.member;
        let ty = field.ty;
        let key = field.json_key(rename_all);
        match kept {
            Kept::Marked => {
                // Every use of the field's type is spanned at it and goes through the `Diff`
                // trait, as the field's diff does: when the type is not `Diff`, the errors are
                // all the same one, which the compiler shows once.
                let span = ty.span();
                tracked.push(quote_spanned!(span=> <#ty as #p::Diff>::TRACKED));
                mark_tys.push(quote!(#p::Mark<#ty>));
                begins.push(quote_spanned!(span=> <#ty as #p::Diff>::begin(&mut self.#member)));
                let field_since = quote_spanned!(span=> <#ty as #p::Diff>::changes_since(&self.#member, #var, changes));
                since.push(quote! {
                    changes.at_key(#key, |changes| #field_since);
                });
                let field_back = quote_spanned!(span=> <#ty as #p::Diff>::changes_back(&self.#member, #var, changes));
                back.push(quote! {
                    changes.at_key(#key, |changes| #field_back);
                });
                settle.push(quote_spanned!(span=> <#ty as #p::Diff>::settle(&self.#member, #var);));
                undo.push(quote_spanned!(span=> <#ty as #p::Diff>::undo(&mut self.#member, #var);));
                restore.push(
                    quote_spanned!(span=> <#ty as #p::Diff>::restore(&mut self.#member, #var);),
                );
                commit.push(
                    quote_spanned!(span=> <#ty as #p::Diff>::commit(&mut self.#member, #var);),
                );
            }
            Kept::Whole | Kept::Hidden => {
                let span = ty.span();
                mark_tys.push(quote!(::core::option::Option<#ty>));
                begins.push(quote_spanned! {span=>
                    ::core::option::Option::Some(::core::clone::Clone::clone(&self.#member))
                });
                if matches!(kept, Kept::Whole) {
                    let field_since = quote_spanned!(span=> #p::replace_whole::<#ty>(old, &self.#member, changes));
                    since.push(quote! {
                        if let ::core::option::Option::Some(old) = #var {
                            changes.at_key(#key, |changes| #field_since);
                        }
                    });
                    let field_back = quote_spanned!(span=> #p::replace_whole::<#ty>(&self.#member, old, changes));
                    back.push(quote! {
                        if let ::core::option::Option::Some(old) = #var {
                            changes.at_key(#key, |changes| #field_back);
                        }
                    });
                } else {
                    since.push(quote!(let _ = #var;));
                    back.push(quote!(let _ = #var;));
                }
                settle.push(quote!(let _ = #var;));
                undo.push(quote! {
                    if let ::core::option::Option::Some(old) = #var.take() {
                        self.#member = old;
                    }
                });
                restore.push(quote!(let _ = #var;));
                commit.push(quote!(let _ = #var;));
            }
        }
    }
    let record = quote!((#(#mark_tys,)*));
    let pattern = quote!((#(#vars,)*));
    quote! {
        const TRACKED: bool = false #(|| #tracked)*;

        fn begin(&mut self) -> #p::Mark<Self>
        where
            Self: ::core::clone::Clone,
        {
            if !<Self as #p::Diff>::TRACKED {
                return #p::Mark::copy(::core::clone::Clone::clone(self));
            }
            #p::Mark::tracked((#(#begins,)*))
        }

        fn settle(&self, mark: &#p::Mark<Self>) {
            let ::core::option::Option::Some(#pattern) = mark.record::<#record>() else {
                return;
            };
            #(#settle)*
        }

        fn changes_since<'__storex>(
            &'__storex self,
            mark: &'__storex #p::Mark<Self>,
            changes: &mut #p::Changes<'__storex>,
        ) {
            let ::core::option::Option::Some(#pattern) = mark.record::<#record>() else {
                return #p::changes_since_copy(self, mark, changes);
            };
            #(#since)*
        }

        fn changes_back<'__storex>(
            &'__storex self,
            mark: &'__storex #p::Mark<Self>,
            changes: &mut #p::Changes<'__storex>,
        ) {
            let ::core::option::Option::Some(#pattern) = mark.record::<#record>() else {
                return #p::changes_back_copy(self, mark, changes);
            };
            #(#back)*
        }

        fn undo(&mut self, mark: &mut #p::Mark<Self>) {
            let ::core::option::Option::Some(#pattern) = mark.record_mut::<#record>() else {
                return #p::undo_copy(self, mark);
            };
            #(#undo)*
        }

        fn restore(&mut self, mark: #p::Mark<Self>) {
            let ::core::option::Option::Some(#pattern) = mark.into_record::<#record>() else {
                return;
            };
            #(#restore)*
        }

        fn commit(&mut self, mark: #p::Mark<Self>) {
            let ::core::option::Option::Some(#pattern) = mark.into_record::<#record>() else {
                return;
            };
            #(#commit)*
        }
    }
}

/// The transaction methods of a newtype with no generics: its field's own, so that a newtype
/// over a tracked collection (`struct Rows(List<Row>)`) records its writes as the collection
/// does. The mark of the field is the newtype's record. A field sent whole
/// (`#[storex(replace)]`) and generic newtypes keep the default (a copy).
fn newtype_tracking(input: &Input<'_>, field: &Field<'_>) -> TokenStream {
    if field.attrs.replace || !input.original.generics.params.is_empty() {
        return TokenStream::new();
    }
    let p = quote!(::storex::__private);
    let ty = field.ty;
    let member = &field.member;
    // Spanned at the field's type, as its diff is: a type that is not `Diff` is one error there.
    let span = ty.span();
    let diff = quote_spanned!(span=> <#ty as #p::Diff>);
    let record = quote!(#p::Mark<#ty>);
    quote! {
        const TRACKED: bool = #diff::TRACKED;

        fn begin(&mut self) -> #p::Mark<Self>
        where
            Self: ::core::clone::Clone,
        {
            if !<Self as #p::Diff>::TRACKED {
                return #p::Mark::copy(::core::clone::Clone::clone(self));
            }
            #p::Mark::tracked(#diff::begin(&mut self.#member))
        }

        fn settle(&self, mark: &#p::Mark<Self>) {
            if let ::core::option::Option::Some(inner) = mark.record::<#record>() {
                #diff::settle(&self.#member, inner);
            }
        }

        fn changes_since<'__storex>(
            &'__storex self,
            mark: &'__storex #p::Mark<Self>,
            changes: &mut #p::Changes<'__storex>,
        ) {
            match mark.record::<#record>() {
                ::core::option::Option::Some(inner) => #diff::changes_since(&self.#member, inner, changes),
                ::core::option::Option::None => #p::changes_since_copy(self, mark, changes),
            }
        }

        fn changes_back<'__storex>(
            &'__storex self,
            mark: &'__storex #p::Mark<Self>,
            changes: &mut #p::Changes<'__storex>,
        ) {
            match mark.record::<#record>() {
                ::core::option::Option::Some(inner) => #diff::changes_back(&self.#member, inner, changes),
                ::core::option::Option::None => #p::changes_back_copy(self, mark, changes),
            }
        }

        fn undo(&mut self, mark: &mut #p::Mark<Self>) {
            match mark.record_mut::<#record>() {
                ::core::option::Option::Some(inner) => #diff::undo(&mut self.#member, inner),
                ::core::option::Option::None => #p::undo_copy(self, mark),
            }
        }

        fn restore(&mut self, mark: #p::Mark<Self>) {
            if let ::core::option::Option::Some(inner) = mark.into_record::<#record>() {
                #diff::restore(&mut self.#member, inner);
            }
        }

        fn commit(&mut self, mark: #p::Mark<Self>) {
            if let ::core::option::Option::Some(inner) = mark.into_record::<#record>() {
                #diff::commit(&mut self.#member, inner);
            }
        }
    }
}

fn diff_impl_with(input: &Input<'_>, body: TokenStream, methods: TokenStream) -> TokenStream {
    let ident = input.ident;
    let mut generics = input.original.generics.clone();
    let bound = match &input.shape {
        Shape::Named(_) => quote!(::storex::__private::Diff),
        Shape::Newtype(field) if !field.attrs.replace => quote!(::storex::__private::Diff),
        _ => quote!(::storex::__private::serde::Serialize + ::core::cmp::PartialEq),
    };
    let type_params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    if !type_params.is_empty() {
        let where_clause = generics.make_where_clause();
        for param in type_params {
            where_clause
                .predicates
                .push(syn::parse_quote!(#param: #bound));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::storex::__private::Diff for #ident #ty_generics #where_clause {
            fn diff<'__storex>(
                &'__storex self,
                new: &'__storex Self,
                changes: &mut ::storex::__private::Changes<'__storex>,
            ) {
                #body
            }

            #methods
        }
    }
}

fn diff_body(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    match &input.shape {
        Shape::Named(fields) => {
            let rename_all = input.serde.rename_all;
            let steps: Vec<TokenStream> = fields
                .iter()
                .filter(|field| !field.serde.skipped)
                .map(|field| {
                    let member = &field.member;
                    let key = field.json_key(rename_all);
                    // Spanned at the field's type: a type that cannot be diffed (or compared,
                    // for `replace`) is reported on the user's field.
                    let step = if field.attrs.replace {
                        quote_spanned! {field.ty.span()=>
                            ::storex::__private::replace_whole(&self.#member, &new.#member, changes)
                        }
                    } else {
                        quote_spanned! {field.ty.span()=>
                            ::storex::__private::Diff::diff(&self.#member, &new.#member, changes)
                        }
                    };
                    quote!(changes.at_key(#key, |changes| #step);)
                })
                .collect();
            if steps.is_empty() {
                quote!(let _ = (new, changes);)
            } else {
                quote!(#(#steps)*)
            }
        }
        // serde writes a newtype as its field: the field's diff is at the newtype's own path.
        Shape::Newtype(field) => {
            let member = &field.member;
            if field.attrs.replace {
                quote_spanned! {field.ty.span()=>
                    ::storex::__private::replace_whole(&self.#member, &new.#member, changes)
                }
            } else {
                quote_spanned! {field.ty.span()=>
                    ::storex::__private::Diff::diff(&self.#member, &new.#member, changes)
                }
            }
        }
        // Enums, tuple structs of several fields and unit structs: replaced whole when they
        // differ (needs `PartialEq`).
        _ => quote_spanned! {ident.span()=>
            ::storex::__private::replace_whole(self, new, changes)
        },
    }
}

/// What is emitted beside the errors of a derive that failed: the impls without their
/// content, so that the user's other code (its `#[storex::mutations]` impl, say) does not add
/// errors that are only consequences. Nothing for the shapes that cannot have the impls.
pub fn fallback(input: &Input<'_>, store: bool) -> TokenStream {
    if matches!(input.shape, Shape::Union(_)) {
        return TokenStream::new();
    }
    let diff = diff_impl_with(input, quote!(let _ = (new, changes);), TokenStream::new());
    if !store {
        return diff;
    }
    if !input.original.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = input.ident;
    let name = input.store_name();
    quote! {
        #[automatically_derived]
        impl ::storex::__private::Store for #ident {
            const NAME: &'static str = #name;
        }

        #diff
    }
}

/// `impl Store`, `impl Diff` and the registration of the store by name.
pub fn store(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    let name = input.store_name();
    let diff = diff_impl(input);
    // Spanned at the struct's name: a store without a `#[storex::mutations]` impl is reported
    // there, through the `Mutations` trait's own message.
    let entry = if input.store.durable {
        // A durable store is made again from its saved JSON: it must be `Deserialize` (the
        // error points at the struct).
        quote_spanned! {ident.span()=>
            ::storex::__private::StoreEntry::of::<#ident>().durable::<#ident>()
        }
    } else {
        quote_spanned! {ident.span()=>
            ::storex::__private::StoreEntry::of::<#ident>()
        }
    };
    let ts = if input.store.ts {
        ts(input)
    } else {
        TokenStream::new()
    };
    quote! {
        #[automatically_derived]
        impl ::storex::__private::Store for #ident {
            const NAME: &'static str = #name;
        }

        #diff

        ::storex::__private::inventory::submit! { #entry }

        #ts
    }
}

/// `#[store(ts)]`: the store's TypeScript description, from its state type and the types of
/// its mutations (which `#[storex::mutations]` lists in a hidden method), and its registration
/// for `storex::ts::export_all`. All of it exists only when storex's `ts` feature is on, so that
/// the attribute costs nothing otherwise.
fn ts(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    // Spanned at the struct's name: a state that is not `ts_rs::TS` is reported there.
    let entry = quote_spanned! {ident.span()=>
        ::storex::__private::TsEntry::of::<#ident>()
    };
    quote! {
        ::storex::__private::if_ts! {
            #[automatically_derived]
            impl ::storex::__private::TypedStore for #ident {
                fn describe(out: &mut ::storex::__private::Description<'_>) {
                    #ident::__storex_mutation_types(out);
                }
            }

            ::storex::__private::inventory::submit! { #entry }
        }
    }
}
