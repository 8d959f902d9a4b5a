//! Procedural macros of [storex](https://docs.rs/storex-runtime): `#[derive(Store)]`,
//! `#[derive(Diff)]`, `#[storex::mutations]` and `mutation!`.
//!
//! Use them through the `storex` crate, which re-exports them and documents them with examples;
//! the generated code reaches the runtime only through `::storex::__private`.
//!
//! Each macro is a short pipeline: `ast` models the input (keeping the user's tokens for
//! errors), `attr` parses attributes, `valid` checks every rule and collects all errors, and
//! `expand` generates code from a valid model.

use proc_macro::TokenStream;
use syn::parse_macro_input;

mod ast;
mod attr;
mod case;
mod ctxt;
mod expand;
mod valid;

#[cfg(test)]
mod tests;

use ctxt::Ctxt;
use valid::Derive;

/// Makes a struct or an enum a store; see `storex::Store`.
#[proc_macro_derive(Store, attributes(store, storex))]
pub fn derive_store(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    derive(&input, Derive::Store).into()
}

/// Diffs a type field by field (structs with named fields), as its field (newtypes), or as a
/// whole value when it changed (enums, tuple structs of several fields and unit structs, which
/// must be `PartialEq`); see `storex::Diff`.
#[proc_macro_derive(Diff, attributes(storex))]
pub fn derive_diff(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    derive(&input, Derive::Diff).into()
}

fn derive(input: &syn::DeriveInput, derive: Derive) -> proc_macro2::TokenStream {
    let mut cx = Ctxt::new();
    let model = ast::Input::from_syn(&mut cx, input);
    valid::input(&mut cx, &model, derive);
    match cx.check() {
        Ok(()) => match derive {
            Derive::Store => expand::store(&model),
            Derive::Diff => expand::diff_impl(&model),
        },
        Err(error) => {
            let errors = error.to_compile_error();
            let fallback = expand::fallback(&model, derive == Derive::Store);
            quote::quote!(#errors #fallback)
        }
    }
}

/// Turns the `#[init]`, `#[mutation("name")]` and `#[terminate]` methods of a store's impl into
/// its behaviour (`storex::Mutations`); see `storex::mutations`.
#[proc_macro_attribute]
pub fn mutations(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as syn::ItemImpl);
    let mut cx = Ctxt::new();
    valid::mutations_args(&mut cx, args.into());
    let block = ast::Impl::from_syn(&mut cx, item);
    valid::impl_block(&mut cx, &block);
    let valid = !cx.has_errors();
    // A trait impl is not a store's impl: it is left as it is, with the error beside it.
    let expanded = match block.item.trait_ {
        Some(_) => quote::ToTokens::into_token_stream(&block.item),
        None => expand::mutations(&block, valid),
    };
    let errors = cx.check().err().map(|error| error.to_compile_error());
    quote::quote!(#errors #expanded).into()
}

/// A server-side mutation whose name and argument count are checked at compile time; see
/// `storex::mutation!`.
#[proc_macro]
pub fn mutation(input: TokenStream) -> TokenStream {
    let call = parse_macro_input!(input as expand::MutationCall);
    expand::mutation_call(&call).into()
}
