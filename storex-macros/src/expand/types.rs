//! The hidden list of a store's mutation types, which `storex::ts` reads (feature `ts`): a
//! generic method whose bounds name every argument and result type, so that nothing is asked of
//! those types until a describer calls it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit_mut::VisitMut;

use crate::ast::{Arg, Impl};

/// `impl Store { fn __storex_mutation_types(out) }`, behind storex's `ts` feature.
pub fn mutation_types(block: &Impl) -> TokenStream {
    let self_ty = &block.item.self_ty;
    let p = quote!(::storex::__private);
    let mut bounds = Vec::new();
    let mut calls = Vec::new();
    for method in &block.methods {
        let Some(name) = method.mutation_name() else {
            continue;
        };
        calls.push(quote!(<__V as #p::DescribeMutation>::mutation(__storex_out, #name);));
        let inputs = method.sig.inputs.iter().filter_map(|input| match input {
            syn::FnArg::Typed(typed) => Some(typed),
            syn::FnArg::Receiver(_) => None,
        });
        // `method.args` holds the typed inputs in order, so they pair up one to one.
        for (position, (input, arg)) in inputs.zip(&method.args).enumerate() {
            let Arg::Data(ty) = arg else { continue };
            let ty = with_static_lifetimes(ty);
            let label = match &*input.pat {
                syn::Pat::Ident(pat) => {
                    let ident = pat.ident.to_string();
                    ident.strip_prefix("r#").unwrap_or(&ident).to_owned()
                }
                _ => format!("arg{}", position + 1),
            };
            bounds.push(quote!(__V: #p::DescribeArg<#ty>));
            calls.push(quote!(<__V as #p::DescribeArg<#ty>>::arg(__storex_out, #label);));
        }
        let result = match &method.sig.output {
            syn::ReturnType::Default => quote!(()),
            syn::ReturnType::Type(_, ty) => {
                let ty = with_static_lifetimes(ty);
                quote!(#ty)
            }
        };
        bounds.push(quote!(__V: #p::DescribeReply<#result>));
        calls.push(quote!(<__V as #p::DescribeReply<#result>>::reply(__storex_out);));
    }
    quote! {
        #p::if_ts! {
            #[automatically_derived]
            impl #self_ty {
                #[doc(hidden)]
                #[allow(private_bounds)]
                pub fn __storex_mutation_types<__V: #p::DescribeMutation>(__storex_out: &mut __V)
                where
                    #(#bounds,)*
                {
                    let _ = &__storex_out;
                    #(#calls)*
                }
            }
        }
    }
}

/// The type with every lifetime, named or elided, made `'static`: the bounds stand outside the
/// method the type was written in, and a lifetime changes nothing in TypeScript.
fn with_static_lifetimes(ty: &syn::Type) -> syn::Type {
    struct Static;
    impl VisitMut for Static {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            lifetime.ident = syn::Ident::new("static", lifetime.ident.span());
        }
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            if reference.lifetime.is_none() {
                reference.lifetime = Some(syn::parse_quote!('static));
            }
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
    }
    let mut ty = ty.clone();
    Static.visit_type_mut(&mut ty);
    ty
}
