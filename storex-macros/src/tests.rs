//! Unit tests of attribute parsing and validation: the messages the macros give, without a
//! compiler round trip (the ui-tests check how rustc shows them).

use syn::parse_quote;

use crate::ast::{Arg, Impl, Input};
use crate::attr::{self, Role};
use crate::ctxt::Ctxt;
use crate::valid::{self, Derive};

/// Every error message of a model checked by `check`, in order.
fn messages(check: impl FnOnce(&mut Ctxt)) -> Vec<String> {
    let mut cx = Ctxt::new();
    check(&mut cx);
    match cx.check() {
        Ok(()) => Vec::new(),
        Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
    }
}

fn derive_messages(input: syn::DeriveInput, derive: Derive) -> Vec<String> {
    messages(|cx| {
        let model = Input::from_syn(cx, &input);
        valid::input(cx, &model, derive);
    })
}

fn impl_messages(item: syn::ItemImpl) -> Vec<String> {
    messages(|cx| {
        let block = Impl::from_syn(cx, item);
        valid::impl_block(cx, &block);
    })
}

#[test]
fn store_name_and_unknown_keys() {
    let input: syn::DeriveInput = parse_quote! {
        #[store(name = "App.Counter")]
        struct Counter { counter: i64 }
    };
    let mut cx = Ctxt::new();
    let model = Input::from_syn(&mut cx, &input);
    assert_eq!(model.store_name(), "App.Counter");
    assert!(cx.check().is_ok());

    let input: syn::DeriveInput = parse_quote! {
        #[store(name = "A", label = "B")]
        struct Counter { #[storex(replace, deep)] counter: i64 }
    };
    assert_eq!(
        derive_messages(input, Derive::Store),
        [
            "unknown key `label` in #[store(...)]; the known keys are: `name = \"...\"`, `durable`, `ts`",
            "unknown key `deep` in #[storex(...)]; the known keys are: `replace`",
        ]
    );
}

#[test]
fn ts_is_a_flag_given_once() {
    let input: syn::DeriveInput = parse_quote! {
        #[store(ts, name = "App.Cart")]
        struct Cart { items: Vec<String> }
    };
    let mut cx = Ctxt::new();
    let model = Input::from_syn(&mut cx, &input);
    assert!(model.store.ts && !model.store.durable);
    assert!(cx.check().is_ok());

    let input: syn::DeriveInput = parse_quote! {
        #[store(ts, ts)]
        struct Cart { items: Vec<String> }
    };
    assert_eq!(
        derive_messages(input, Derive::Store),
        ["`ts` is given twice"]
    );
}

#[test]
fn durable_is_a_flag_given_once() {
    let input: syn::DeriveInput = parse_quote! {
        #[store(name = "App.Cart", durable)]
        struct Cart { items: Vec<String> }
    };
    let mut cx = Ctxt::new();
    let model = Input::from_syn(&mut cx, &input);
    assert!(model.store.durable);
    assert!(cx.check().is_ok());

    let input: syn::DeriveInput = parse_quote! {
        #[store(durable, durable)]
        struct Cart { items: Vec<String> }
    };
    assert_eq!(
        derive_messages(input, Derive::Store),
        ["`durable` is given twice"]
    );
}

#[test]
fn json_keys_follow_serde() {
    let input: syn::DeriveInput = parse_quote! {
        #[serde(rename_all(serialize = "camelCase", deserialize = "snake_case"))]
        struct Profile {
            user_name: String,
            #[serde(rename = "E-Mail")]
            email: String,
            r#type: u8,
            #[serde(skip_serializing)]
            secret: String,
        }
    };
    let mut cx = Ctxt::new();
    let model = Input::from_syn(&mut cx, &input);
    let crate::ast::Shape::Named(fields) = &model.shape else {
        panic!("a struct with named fields");
    };
    let keys: Vec<_> = fields
        .iter()
        .filter(|field| !field.serde.skipped)
        .map(|field| field.json_key(model.serde.rename_all))
        .collect();
    assert_eq!(keys, ["userName", "E-Mail", "type"]);
}

#[test]
fn stores_are_structs_or_enums_and_not_generic() {
    let shapes: [syn::DeriveInput; 5] = [
        parse_quote!(
            struct Counter {
                counter: i64,
            }
        ),
        parse_quote!(
            enum Light {
                On,
            }
        ),
        parse_quote!(
            struct Counter(i64);
        ),
        parse_quote!(
            struct Point(i64, i64);
        ),
        parse_quote!(
            struct Nothing;
        ),
    ];
    for input in shapes {
        assert!(derive_messages(input, Derive::Store).is_empty());
    }
    let union: syn::DeriveInput = parse_quote!(union Bits { a: u8 });
    let found = derive_messages(union, Derive::Store);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("a union cannot be a store"),
        "{found:#?}"
    );
    let generic: syn::DeriveInput = parse_quote!(
        struct List<T> {
            items: Vec<T>,
        }
    );
    assert_eq!(derive_messages(generic.clone(), Derive::Store).len(), 1);
    assert!(derive_messages(generic, Derive::Diff).is_empty());
    let generic: syn::DeriveInput = parse_quote!(
        struct Wrap<T>(T);
    );
    assert_eq!(derive_messages(generic.clone(), Derive::Store).len(), 1);
    assert!(derive_messages(generic, Derive::Diff).is_empty());
}

#[test]
fn a_newtype_is_its_field() {
    let input: syn::DeriveInput = parse_quote!(
        struct Text(#[storex(replace)] String);
    );
    let mut cx = Ctxt::new();
    let model = Input::from_syn(&mut cx, &input);
    let crate::ast::Shape::Newtype(field) = &model.shape else {
        panic!("a newtype");
    };
    assert!(field.attrs.replace);
    let member = &field.member;
    assert_eq!(quote::quote!(#member).to_string(), "0");
    assert!(cx.check().is_ok());
    let input: syn::DeriveInput = parse_quote!(
        struct Point(i64, i64);
    );
    let mut cx = Ctxt::new();
    assert!(matches!(
        Input::from_syn(&mut cx, &input).shape,
        crate::ast::Shape::Whole
    ));
}

#[test]
fn serde_attributes_that_reshape_a_newtype_are_refused() {
    // `transparent` writes the newtype as its field, and serde writes a newtype as its field
    // whether or not it is skipped: the diff agrees.
    let input: syn::DeriveInput = parse_quote! {
        #[serde(transparent, rename = "T")]
        struct Text(#[serde(skip_serializing_if = "String::is_empty", rename = "x")] String);
    };
    assert!(derive_messages(input, Derive::Store).is_empty());

    let input: syn::DeriveInput = parse_quote! {
        #[serde(into = "String")]
        struct Text(#[serde(serialize_with = "upper")] String);
    };
    let found = derive_messages(input, Derive::Store);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("#[serde(into)] makes serde write `Text` as another type"));
    assert!(found[1].starts_with("#[serde(serialize_with)] cannot be used on the field of `Text`"));
}

#[test]
fn serde_attributes_that_reshape_are_refused() {
    let input: syn::DeriveInput = parse_quote! {
        #[serde(transparent)]
        struct Board {
            #[serde(flatten)]
            inner: Inner,
            #[serde(with = "module", default)]
            count: i64,
        }
    };
    let found = derive_messages(input, Derive::Diff);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("#[serde(transparent)] changes the JSON shape of `Board`"));
    assert!(found[1].starts_with("#[serde(flatten)] cannot be used in a diffed struct"));
    assert!(found[2].starts_with("#[serde(with)] cannot be used in a diffed struct"));
}

#[test]
fn mutation_markers_parse_to_roles() {
    let attr: syn::Attribute = parse_quote!(#[mutation("set",)]);
    assert!(matches!(attr::role(&attr), Ok(Role::Mutation(name)) if name.value() == "set"));
    let attr: syn::Attribute = parse_quote!(#[init]);
    assert!(matches!(attr::role(&attr), Ok(Role::Init)));

    let refused: [(syn::Attribute, &str); 5] = [
        (
            parse_quote!(#[mutation]),
            "#[mutation] needs the mutation's name",
        ),
        (
            parse_quote!(#[mutation(set)]),
            "the mutation's name must be a string literal",
        ),
        (
            parse_quote!(#[mutation("")]),
            "a mutation's name cannot be empty",
        ),
        (
            parse_quote!(#[mutation("set", fast)]),
            "unexpected arguments: #[mutation(...)] takes only",
        ),
        (
            parse_quote!(#[terminate(now)]),
            "#[terminate] takes no arguments",
        ),
    ];
    for (attr, expected) in refused {
        match attr::role(&attr) {
            Ok(_) => panic!("{expected}: accepted"),
            Err(error) => assert!(error.to_string().starts_with(expected), "{error}"),
        }
    }
}

#[test]
fn context_arguments_are_found_by_type() {
    let item: syn::ItemImpl = parse_quote! {
        impl Counter {
            #[mutation("m")]
            fn m(&mut self, a: &storex::Params, b: i64, c: &Session, d: &mut Session) {}
        }
    };
    let mut cx = Ctxt::new();
    let block = Impl::from_syn(&mut cx, item);
    let kinds: Vec<&str> = block.methods[0]
        .args
        .iter()
        .map(|arg| match arg {
            Arg::Session => "session",
            Arg::Params => "params",
            Arg::Data(_) => "data",
        })
        .collect();
    assert_eq!(kinds, ["params", "data", "session", "data"]);
    assert_eq!(block.methods[0].arity(), 2);
}

#[test]
fn impl_rules_are_all_reported() {
    let item: syn::ItemImpl = parse_quote! {
        impl Counter {
            #[mutation("set")]
            fn set(&mut self, n: i64) {}
            #[mutation("set")]
            fn set_again(&self) {}
            #[terminate]
            fn bye(&mut self, reason: String) {}
            #[init]
            const START: i64 = 0;
        }
    };
    let found = impl_messages(item);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert_eq!(
        found[0],
        "#[init] belongs on a method of this impl, not on a const"
    );
    assert_eq!(
        found[1],
        "a mutation takes `&mut self`, not `&self`: it changes the state in place"
    );
    assert!(found[2].starts_with("two mutations are named \"set\": `fn set` and `fn set_again`"));
    assert!(found[3].starts_with("#[terminate] may take only `&Session` and `&Params`"));
    assert!(found[4].starts_with("this store has no #[init] method"));
}

#[test]
fn mutation_call_syntax() {
    let call: crate::expand::MutationCall = parse_quote!(crate::stores::Counter, "set", 1 + 2,);
    assert_eq!(call.name.value(), "set");
    assert_eq!(call.args.len(), 1);
    let missing = syn::parse_str::<crate::expand::MutationCall>("Counter");
    assert!(missing.is_err());
    let not_a_string = syn::parse_str::<crate::expand::MutationCall>("Counter, set");
    assert!(not_a_string.err().is_some_and(|error| error
        .to_string()
        .starts_with("expected the mutation's name")));
}
