//! `mutation!(Store, "name", args...)`: a server-side mutation whose name and arity are checked
//! at compile time against the store's table of mutations.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Token};

/// `Store, "name", arg, arg...`
pub struct MutationCall {
    pub store: syn::Path,
    pub name: LitStr,
    pub args: Vec<Expr>,
}

impl Parse for MutationCall {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str =
            "write `storex::mutation!(Store, \"name\", arguments...)`, e.g. `storex::mutation!(Counter, \"set\", 10)`";
        if input.is_empty() {
            return Err(input.error(USAGE));
        }
        let store: syn::Path = input.parse()?;
        if input.is_empty() {
            return Err(input.error(format!("the mutation's name is missing: {USAGE}")));
        }
        input.parse::<Token![,]>()?;
        let name: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("expected the mutation's name as a string literal: {USAGE}"),
            )
        })?;
        let mut args = Vec::new();
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
            let rest = Punctuated::<Expr, Token![,]>::parse_terminated(input)?;
            args.extend(rest);
        }
        Ok(MutationCall { store, name, args })
    }
}

pub fn mutation_call(call: &MutationCall) -> TokenStream {
    let store = &call.store;
    let name = &call.name;
    let arity = call.args.len();
    let type_text = store.to_token_stream().to_string().replace(' ', "");
    // Spanned at the name: a misspelt name or a wrong argument count is reported on it.
    let check = quote_spanned! {name.span()=>
        const _: () = {
            if let ::core::option::Option::Some(message) = ::storex::__private::check_mutation(
                <#store as ::storex::__private::Store>::NAME,
                #type_text,
                <#store as ::storex::__private::Mutations>::MUTATIONS,
                #name,
                #arity,
            ) {
                ::core::panic!("{}", message.as_str());
            }
        };
    };
    let args = call.args.iter().map(|arg| {
        quote_spanned! {arg.span()=> ::storex::__private::to_json(&(#arg))}
    });
    quote! {
        {
            #check
            ::storex::__private::checked_mutation::<#store>(#name, [#(#args),*])
        }
    }
}
