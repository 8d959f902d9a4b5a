//! `#[derive(Diff)]` and `#[derive(Store)]`: the per-field diff, the store's name and its
//! registration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Input, Shape};

/// `impl Diff`: field by field for structs with named fields, the whole value otherwise.
pub fn diff_impl(input: &Input<'_>) -> TokenStream {
    diff_impl_with(input, diff_body(input))
}

fn diff_impl_with(input: &Input<'_>, body: TokenStream) -> TokenStream {
    let ident = input.ident;
    let mut generics = input.original.generics.clone();
    let bound = match input.shape {
        Shape::Named(_) => quote!(::storex::__private::Diff),
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
                    let member = field.ident;
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
        // Enums, tuple and unit structs: replaced whole when they differ (needs `PartialEq`).
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
    let diff = diff_impl_with(input, quote!(let _ = (new, changes);));
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
    quote! {
        #[automatically_derived]
        impl ::storex::__private::Store for #ident {
            const NAME: &'static str = #name;
        }

        #diff

        ::storex::__private::inventory::submit! { #entry }
    }
}
