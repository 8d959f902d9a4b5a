//! `#[storex::mutations]`: the user's impl without its markers, and `impl Mutations` with the
//! table of mutations, init, the dispatch by name and arity, and terminate.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::ast::{Arg, Impl, Method};
use crate::attr::Role;

/// `valid` is false when errors were reported: then init and dispatch are stubs that call no
/// user method, so that the user sees the macro's errors and not their consequences, while the
/// table stays complete for `mutation!` checks.
pub fn mutations(block: &Impl, valid: bool) -> TokenStream {
    let item = &block.item;
    let self_ty = &item.self_ty;
    let mutations: Vec<&Method> = block
        .methods
        .iter()
        .filter(|method| method.mutation_name().is_some())
        .collect();
    let table = mutations.iter().map(|method| {
        let name = method.mutation_name();
        let arity = method.arity();
        let is_async = method.is_async();
        quote! {
            ::storex::__private::MutationInfo { name: #name, arity: #arity, is_async: #is_async }
        }
    });
    let find = |role: fn(&Role) -> bool| block.methods.iter().find(|m| role(&m.role));
    let init = match find(|role| matches!(role, Role::Init)) {
        Some(method) if valid => init(method),
        _ => quote! {
            fn init<'__storex>(
                _: &'__storex ::storex::__private::Session,
                _: &'__storex ::storex::__private::Params,
            ) -> ::storex::__private::Step<'__storex, ::core::result::Result<::storex::__private::Init<Self>, ::std::string::String>> {
                ::storex::__private::Step::ready(::core::result::Result::Err(::std::string::String::from("this store has no valid #[init]")))
            }
        },
    };
    let arms = if valid {
        mutations
            .iter()
            .map(|method| dispatch_arm(method))
            .collect()
    } else {
        Vec::new()
    };
    let terminate = match find(|role| matches!(role, Role::Terminate)) {
        Some(method) if valid => terminate(method),
        _ => TokenStream::new(),
    };
    let types = if valid {
        super::types::mutation_types(block)
    } else {
        TokenStream::new()
    };
    quote! {
        #item

        #types

        #[automatically_derived]
        impl ::storex::__private::Mutations for #self_ty {
            const MUTATIONS: &'static [::storex::__private::MutationInfo] = &[#(#table),*];

            #init

            fn dispatch<'__storex>(
                &'__storex mut self,
                call: ::storex::__private::Call<'__storex>,
            ) -> ::storex::__private::Step<'__storex, ::storex::__private::Outcome> {
                match (call.name, call.args.len()) {
                    #(#arms)*
                    _ => ::storex::__private::Step::ready(::storex::__private::no_match(
                        <Self as ::storex::__private::Store>::NAME,
                        call.name,
                        call.args,
                    )),
                }
            }

            #terminate
        }
    }
}

/// Where a type error about the method's result belongs: its return type, or its name.
fn return_span(method: &Method) -> Span {
    match &method.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => method.sig.ident.span(),
    }
}

/// The context parameters of a generated fn, named `_` when the user's method does not ask for
/// them (no unused-variable warnings), and the user method's arguments in its order.
struct Context {
    session: TokenStream,
    params: TokenStream,
    args: Vec<TokenStream>,
}

fn context(method: &Method, session: TokenStream, params: TokenStream) -> Context {
    let mut uses = (false, false);
    let args = method
        .args
        .iter()
        .enumerate()
        .map(|(index, arg)| match arg {
            Arg::Session => {
                uses.0 = true;
                session.clone()
            }
            Arg::Params => {
                uses.1 = true;
                params.clone()
            }
            Arg::Data(_) => format_ident!("__storex_arg{}", index).into_token_stream(),
        })
        .collect();
    Context {
        session: if uses.0 { session } else { quote!(_) },
        params: if uses.1 { params } else { quote!(_) },
        args,
    }
}

fn init(method: &Method) -> TokenStream {
    let ident = &method.sig.ident;
    let cx = context(method, quote!(session), quote!(params));
    let (session, params, args) = (&cx.session, &cx.params, &cx.args);
    let await_ = method.is_async().then(|| quote!(.await));
    let into_init = quote_spanned! {return_span(method)=>
        ::storex::__private::into_init::<Self, _>(__storex_value)
    };
    let run = quote! {
        let __storex_value = Self::#ident(#(#args),*) #await_;
        #into_init
    };
    let step = if method.is_async() {
        quote!(::storex::__private::Step::pending(async move { #run }))
    } else {
        quote!(::storex::__private::Step::ready({ #run }))
    };
    quote! {
        fn init<'__storex>(
            #session: &'__storex ::storex::__private::Session,
            #params: &'__storex ::storex::__private::Params,
        ) -> ::storex::__private::Step<'__storex, ::core::result::Result<::storex::__private::Init<Self>, ::std::string::String>> {
            #step
        }
    }
}

fn dispatch_arm(method: &Method) -> TokenStream {
    let ident = &method.sig.ident;
    let name = method.mutation_name();
    let arity = method.arity();
    let cx = context(method, quote!(call.session), quote!(call.params));
    let args = &cx.args;
    // Each data argument is decoded in turn; the first that does not fit is the answer.
    let mut position = 0usize;
    let decode: Vec<TokenStream> = method
        .args
        .iter()
        .enumerate()
        .filter_map(|(index, arg)| {
            let Arg::Data(ty) = arg else { return None };
            let var = format_ident!("__storex_arg{}", index);
            let arg_fn = quote_spanned!(ty.span()=> ::storex::__private::arg::<#ty>);
            let at = position;
            position += 1;
            Some(quote! {
                let #var = match #arg_fn(<Self as ::storex::__private::Store>::NAME, call.name, call.args, #at) {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(outcome) => break '__storex outcome,
                };
            })
        })
        .collect();
    let label = (!decode.is_empty()).then(|| quote!('__storex:));
    let await_ = method.is_async().then(|| quote!(.await));
    let outcome = quote_spanned! {return_span(method)=>
        ::storex::__private::outcome(__storex_value)
    };
    let run = quote! {
        #label {
            #(#decode)*
            let __storex_value = Self::#ident(self, #(#args),*) #await_;
            #outcome
        }
    };
    // Async mutations decode their arguments inside the future too: nothing runs before it
    // is polled, as the runtime expects of `Step::Pending`.
    let step = if method.is_async() {
        quote!(::storex::__private::Step::pending(async move { #run }))
    } else {
        quote!(::storex::__private::Step::ready(#run))
    };
    quote!((#name, #arity) => #step,)
}

fn terminate(method: &Method) -> TokenStream {
    let ident = &method.sig.ident;
    let cx = context(method, quote!(session), quote!(params));
    let (session, params, args) = (&cx.session, &cx.params, &cx.args);
    let await_ = method.is_async().then(|| quote!(.await));
    // Spanned at the return type: a terminate that returns something is reported there.
    let terminated = quote_spanned! {return_span(method)=>
        ::storex::__private::terminated(__storex_value)
    };
    let run = quote! {
        let __storex_value = Self::#ident(self, #(#args),*) #await_;
        #terminated
    };
    let step = if method.is_async() {
        quote!(::storex::__private::Step::pending(async move { #run }))
    } else {
        quote!(::storex::__private::Step::ready({ #run }))
    };
    quote! {
        fn terminate<'__storex>(
            &'__storex mut self,
            #session: &'__storex ::storex::__private::Session,
            #params: &'__storex ::storex::__private::Params,
        ) -> ::storex::__private::Step<'__storex, ()> {
            #step
        }
    }
}
