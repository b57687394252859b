//! `#[rivetkit::actor]`: turns an `impl` block into a Rivet actor type.
//!
//! The attribute keeps the block as an inherent `impl` and generates `impl rivetkit::Actor`
//! around it. Methods named like a hook become that hook; every other `async fn` becomes an
//! action; `type Input/Vars/ConnParams/ConnState = …;` items become the associated types.
//! See the `rivetkit` crate documentation for the user-facing rules.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, PathArguments,
    ReturnType, Token, Type, TypeReference,
};

/// Makes an actor type of the struct the `impl` block is for. See the `rivetkit` crate.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse::<Args>(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    let item = match syn::parse::<ItemImpl>(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand(args, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// `rename_all = "camelCase"`.
#[derive(Default)]
struct Args {
    camel_case: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if !pair.path.is_ident("rename_all") {
                return Err(syn::Error::new(
                    pair.path.span(),
                    "unknown argument; expected `rename_all = \"camelCase\"`",
                ));
            }
            let value = match &pair.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => s.value(),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "expected a string: \"camelCase\" or \"snake_case\"",
                    ))
                }
            };
            args.camel_case = match value.as_str() {
                "camelCase" => true,
                "snake_case" => false,
                _ => {
                    return Err(syn::Error::new(
                        pair.value.span(),
                        "rename_all must be \"camelCase\" or \"snake_case\"",
                    ))
                }
            };
        }
        Ok(args)
    }
}

/// What a hook can be given, in order, besides the context.
struct HookSpec {
    name: &'static str,
    /// `&mut self` (true) or an associated function (false).
    receiver: bool,
    /// Whether the hook may be `async` / must be sync.
    sync_only: bool,
    /// Expressions for the non-context parameters, in order, with their description.
    values: &'static [(&'static str, &'static str)],
}

const HOOKS: &[HookSpec] = &[
    HookSpec {
        name: "create_state",
        receiver: false,
        sync_only: false,
        values: &[("input", "input: Self::Input")],
    },
    HookSpec {
        name: "create_vars",
        receiver: false,
        sync_only: false,
        values: &[],
    },
    HookSpec {
        name: "on_create",
        receiver: true,
        sync_only: false,
        values: &[("input", "input: &Self::Input")],
    },
    HookSpec {
        name: "on_wake",
        receiver: true,
        sync_only: false,
        values: &[],
    },
    HookSpec {
        name: "on_sleep",
        receiver: true,
        sync_only: false,
        values: &[],
    },
    HookSpec {
        name: "on_destroy",
        receiver: true,
        sync_only: false,
        values: &[],
    },
    HookSpec {
        name: "on_state_change",
        receiver: true,
        sync_only: true,
        values: &[],
    },
    HookSpec {
        name: "on_before_connect",
        receiver: true,
        sync_only: false,
        values: &[("params", "params: &Self::ConnParams")],
    },
    HookSpec {
        name: "create_conn_state",
        receiver: true,
        sync_only: false,
        values: &[("params", "params: &Self::ConnParams")],
    },
    HookSpec {
        name: "on_connect",
        receiver: true,
        sync_only: false,
        values: &[("conn", "conn: ConnId")],
    },
    HookSpec {
        name: "on_disconnect",
        receiver: true,
        sync_only: false,
        values: &[("conn", "conn: ConnId")],
    },
    HookSpec {
        name: "on_request",
        receiver: true,
        sync_only: false,
        values: &[("request", "request: rivetkit::http::Request")],
    },
    HookSpec {
        name: "on_websocket",
        receiver: true,
        sync_only: false,
        values: &[("socket", "socket: rivetkit::raw_ws::WebSocket")],
    },
    HookSpec {
        name: "on_before_action_response",
        receiver: true,
        sync_only: false,
        values: &[
            ("action", "action: &str"),
            ("output", "output: rivetkit::Value"),
        ],
    },
    HookSpec {
        name: "run",
        receiver: false,
        sync_only: false,
        values: &[],
    },
];

const ASSOCIATED_TYPES: &[&str] = &["Input", "Vars", "ConnParams", "ConnState"];

/// How a function's parameters and result look.
struct Shape {
    receiver: Option<Span>,
    is_async: bool,
    /// For each parameter after the receiver: `None` for a context, `Some(type)` otherwise.
    params: Vec<(Span, Option<Type>)>,
    ret: Ret,
    /// The declared result type (`T` of `Result<T, E>`), if any.
    output: Option<Type>,
}

enum Ret {
    Unit,
    Result,
    Value,
}

fn shape(f: &ImplItemFn) -> syn::Result<Shape> {
    let mut receiver = None;
    let mut params = Vec::new();
    for input in &f.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() {
                    return Err(syn::Error::new(
                        r.span(),
                        "actor methods take `&self` or `&mut self`, not `self`",
                    ));
                }
                receiver = Some(r.span());
            }
            FnArg::Typed(t) => {
                if is_context(&t.ty) {
                    params.push((t.span(), None));
                } else {
                    params.push((t.span(), Some((*t.ty).clone())));
                }
            }
        }
    }
    let (ret, output) = match &f.sig.output {
        ReturnType::Default => (Ret::Unit, None),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => (Ret::Unit, None),
            Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result") => {
                (Ret::Result, first_generic(p))
            }
            other => (Ret::Value, Some(other.clone())),
        },
    };
    Ok(Shape {
        receiver,
        is_async: f.sig.asyncness.is_some(),
        params,
        ret,
        output,
    })
}

/// `T` of `Result<T, …>`.
fn first_generic(p: &syn::TypePath) -> Option<Type> {
    let last = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `&T` → `T`.
fn strip_ref(ty: &Type) -> Type {
    match ty {
        Type::Reference(r) => (*r.elem).clone(),
        other => other.clone(),
    }
}

/// `Ctx<…>`, `&Ctx<…>`, `&mut Ctx<…>` or `RunCtx<…>`.
fn is_context(ty: &Type) -> bool {
    let ty = match ty {
        Type::Reference(TypeReference { elem, .. }) => &**elem,
        other => other,
    };
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Ctx" || s.ident == "RunCtx"),
        _ => false,
    }
}

/// An action: method name, client-facing name, shape.
struct Action {
    method: Ident,
    name: String,
    shape: Shape,
}

fn expand(args: Args, mut item: ItemImpl) -> syn::Result<Tokens> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[actor] goes on an inherent `impl YourState { … }` block, not a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "generic actor types are not supported; use a concrete struct",
        ));
    }
    let self_ty = (*item.self_ty).clone();

    let mut types: Vec<(Ident, Type)> = Vec::new();
    let mut hooks: Vec<(&'static HookSpec, Ident, Shape)> = Vec::new();
    let mut options: Option<Ident> = None;
    let mut actions: Vec<Action> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut push_error = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    let mut kept = Vec::with_capacity(item.items.len());
    for impl_item in std::mem::take(&mut item.items) {
        match impl_item {
            ImplItem::Type(t) => {
                if ASSOCIATED_TYPES.iter().any(|n| t.ident == n) {
                    types.push((t.ident.clone(), t.ty.clone()));
                } else {
                    push_error(syn::Error::new(
                        t.ident.span(),
                        "unknown associated type; an actor may declare `Input`, `Vars`, `ConnParams` and `ConnState`",
                    ));
                }
            }
            ImplItem::Fn(mut f) => {
                let attr = match take_action_attr(&mut f) {
                    Ok(a) => a,
                    Err(e) => {
                        push_error(e);
                        kept.push(ImplItem::Fn(f));
                        continue;
                    }
                };
                let name = f.sig.ident.to_string();
                if name == "options" {
                    if f.sig.asyncness.is_some() || !f.sig.inputs.is_empty() {
                        push_error(syn::Error::new(
                            f.sig.span(),
                            "`options` is `fn options() -> rivetkit::ActorOptions` (no arguments, not async)",
                        ));
                    }
                    options = Some(f.sig.ident.clone());
                } else if let Some(spec) = HOOKS.iter().find(|h| h.name == name) {
                    if attr.is_some() {
                        push_error(syn::Error::new(
                            f.sig.ident.span(),
                            format!("`{name}` is a lifecycle hook and cannot be an action; rename the method and use #[action(name = \"{name}\")]"),
                        ));
                    }
                    match shape(&f).and_then(|s| check_hook(spec, &f, s)) {
                        Ok(s) => hooks.push((spec, f.sig.ident.clone(), s)),
                        Err(e) => push_error(e),
                    }
                } else {
                    let skip = attr.as_ref().is_some_and(|a| a.skip);
                    if f.sig.asyncness.is_none() {
                        if attr.is_some() && !skip {
                            push_error(syn::Error::new(
                                f.sig.fn_token.span(),
                                "actions must be `async fn`",
                            ));
                        }
                    } else if !skip {
                        let client_name = attr.and_then(|a| a.name).unwrap_or_else(|| {
                            if args.camel_case {
                                camel_case(&name)
                            } else {
                                name.clone()
                            }
                        });
                        match shape(&f) {
                            Ok(s) => {
                                if actions.iter().any(|a| a.name == client_name) {
                                    push_error(syn::Error::new(
                                        f.sig.ident.span(),
                                        format!("two actions are named `{client_name}`"),
                                    ));
                                }
                                if !f.sig.generics.params.is_empty() {
                                    push_error(syn::Error::new(
                                        f.sig.generics.span(),
                                        "actions cannot be generic",
                                    ));
                                }
                                actions.push(Action {
                                    method: f.sig.ident.clone(),
                                    name: client_name,
                                    shape: s,
                                });
                            }
                            Err(e) => push_error(e),
                        }
                    }
                }
                kept.push(ImplItem::Fn(f));
            }
            other => kept.push(other),
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    item.items = kept;

    let hook = |name: &str| hooks.iter().find(|(s, _, _)| s.name == name);
    // An undeclared associated type is read off the hooks that use it, so
    // `async fn create_state(input: MyInput)` needs no `type Input = MyInput;`.
    let first_value = |name: &str| -> Option<Type> {
        hook(name)
            .and_then(|(_, _, s)| s.params.iter().find_map(|(_, t)| t.as_ref().map(strip_ref)))
    };
    let output_of =
        |name: &str| -> Option<Type> { hook(name).and_then(|(_, _, s)| s.output.clone()) };
    let assoc = |name: &str, inferred: Option<Type>, default: Tokens| -> Tokens {
        let ident = format_ident!("{}", name);
        match (types.iter().find(|(i, _)| i == name), inferred) {
            (Some((_, ty)), _) => quote!(type #ident = #ty;),
            (None, Some(ty)) => quote!(type #ident = #ty;),
            (None, None) => quote!(type #ident = #default;),
        }
    };
    let type_input = assoc(
        "Input",
        first_value("create_state").or_else(|| first_value("on_create")),
        quote!(::rivetkit::JsonValue),
    );
    let type_vars = assoc("Vars", output_of("create_vars"), quote!(()));
    let type_params = assoc(
        "ConnParams",
        first_value("on_before_connect").or_else(|| first_value("create_conn_state")),
        quote!(::rivetkit::JsonValue),
    );
    let type_conn_state = assoc("ConnState", output_of("create_conn_state"), quote!(()));

    let call = |name: &str| -> Option<Tokens> {
        hook(name).map(|(spec, method, shape)| hook_call(&self_ty, spec, method, shape))
    };

    let options_fn = options.map(|o| {
        quote! {
            fn options() -> ::rivetkit::ActorOptions {
                <#self_ty>::#o()
            }
        }
    });

    let create_state = call("create_state").unwrap_or_else(|| {
        quote! {
            let _ = (ctx, input);
            ::rivetkit::__private::default_state::<Self>()
        }
    });
    let create_vars = call("create_vars").unwrap_or_else(|| {
        quote! {
            let _ = ctx;
            ::rivetkit::__private::default_value::<Self::Vars>()
        }
    });
    let create_conn_state = call("create_conn_state").unwrap_or_else(|| {
        quote! {
            let _ = (ctx, params);
            ::rivetkit::__private::default_value::<Self::ConnState>()
        }
    });

    let async_hook = |name: &str, sig: Tokens, out: Tokens| -> Option<Tokens> {
        call(name).map(|body| {
            quote! {
                #sig -> impl ::core::future::Future<Output = #out> + Send {
                    async move { #body }
                }
            }
        })
    };
    let unit = quote!(::core::result::Result<(), ::rivetkit::Error>);
    let on_create = async_hook(
        "on_create",
        quote!(fn on_create(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, input: &Self::Input)),
        unit.clone(),
    );
    let lifecycle: Vec<Tokens> = ["on_wake", "on_sleep", "on_destroy"]
        .iter()
        .filter_map(|name| {
            let ident = format_ident!("{}", name);
            async_hook(
                name,
                quote!(fn #ident(&mut self, ctx: &mut ::rivetkit::Ctx<Self>)),
                unit.clone(),
            )
        })
        .collect();
    let on_state_change = call("on_state_change").map(|body| {
        quote! {
            fn on_state_change(&mut self, ctx: &mut ::rivetkit::Ctx<Self>) {
                #body
            }
        }
    });
    let on_before_connect = async_hook(
        "on_before_connect",
        quote!(fn on_before_connect(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, params: &Self::ConnParams)),
        unit.clone(),
    );
    let conn_hooks: Vec<Tokens> = ["on_connect", "on_disconnect"]
        .iter()
        .filter_map(|name| {
            let ident = format_ident!("{}", name);
            async_hook(
                name,
                quote!(fn #ident(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, conn: ::rivetkit::ConnId)),
                unit.clone(),
            )
        })
        .collect();
    let on_request = async_hook(
        "on_request",
        quote!(fn on_request(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, request: ::rivetkit::http::Request)),
        quote!(
            ::core::result::Result<
                ::core::option::Option<::rivetkit::http::Response>,
                ::rivetkit::Error,
            >
        ),
    );
    let on_websocket = async_hook(
        "on_websocket",
        quote!(fn on_websocket(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, socket: ::rivetkit::raw_ws::WebSocket)),
        unit.clone(),
    );
    let on_before_action_response = async_hook(
        "on_before_action_response",
        quote!(fn on_before_action_response(&mut self, ctx: &mut ::rivetkit::Ctx<Self>, action: &str, output: ::rivetkit::Value)),
        quote!(::core::result::Result<::rivetkit::Value, ::rivetkit::Error>),
    );
    let run = async_hook(
        "run",
        quote!(fn run(ctx: ::rivetkit::RunCtx<Self>)),
        unit.clone(),
    )
    .map(|f| {
        quote! {
            #f
            fn has_run() -> bool { true }
        }
    });

    let arms = actions.iter().map(|a| action_arm(&self_ty, a));
    let names = actions
        .iter()
        .map(|a| LitStr::new(&a.name, Span::call_site()));

    Ok(quote! {
        #item

        impl ::rivetkit::Actor for #self_ty {
            #type_input
            #type_vars
            #type_params
            #type_conn_state

            #options_fn

            fn create_state(
                ctx: &mut ::rivetkit::Ctx<Self>,
                input: Self::Input,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<Self, ::rivetkit::Error>> + Send {
                async move { #create_state }
            }

            fn create_vars(
                ctx: &mut ::rivetkit::Ctx<Self>,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<Self::Vars, ::rivetkit::Error>> + Send {
                async move { #create_vars }
            }

            fn create_conn_state(
                &mut self,
                ctx: &mut ::rivetkit::Ctx<Self>,
                params: &Self::ConnParams,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<Self::ConnState, ::rivetkit::Error>> + Send {
                async move { #create_conn_state }
            }

            #on_create
            #(#lifecycle)*
            #on_state_change
            #on_before_connect
            #(#conn_hooks)*
            #on_request
            #on_websocket
            #on_before_action_response
            #run

            fn dispatch<'a>(
                &'a mut self,
                ctx: &'a mut ::rivetkit::Ctx<Self>,
                name: &'a str,
                args: ::rivetkit::Value,
            ) -> ::core::option::Option<::rivetkit::__private::BoxFuture<'a, ::core::result::Result<::rivetkit::Value, ::rivetkit::Error>>> {
                let _ = (&ctx, &args);
                match name {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn action_names() -> &'static [&'static str] {
                &[#(#names),*]
            }
        }
    })
}

/// `#[action]`, `#[action(name = "…")]`, `#[action(skip)]` on a method (removed from the
/// output).
struct ActionAttr {
    name: Option<String>,
    skip: bool,
}

fn take_action_attr(f: &mut ImplItemFn) -> syn::Result<Option<ActionAttr>> {
    let Some(pos) = f.attrs.iter().position(|a| a.path().is_ident("action")) else {
        return Ok(None);
    };
    let attr = f.attrs.remove(pos);
    let mut out = ActionAttr {
        name: None,
        skip: false,
    };
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return Ok(Some(out));
    }
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("name") {
            let s: LitStr = meta.value()?.parse()?;
            out.name = Some(s.value());
            Ok(())
        } else if meta.path.is_ident("skip") {
            out.skip = true;
            Ok(())
        } else {
            Err(meta.error("expected `name = \"…\"` or `skip`"))
        }
    })?;
    Ok(Some(out))
}

fn check_hook(spec: &HookSpec, f: &ImplItemFn, shape: Shape) -> syn::Result<Shape> {
    let name = spec.name;
    let expected = expected_signature(spec);
    if spec.receiver && shape.receiver.is_none() {
        return Err(syn::Error::new(
            f.sig.ident.span(),
            format!("the `{name}` hook takes `&mut self` (or `&self`): {expected}"),
        ));
    }
    if !spec.receiver {
        if let Some(span) = shape.receiver {
            return Err(syn::Error::new(
                span,
                format!("the `{name}` hook has no `self` receiver: {expected}"),
            ));
        }
    }
    if spec.sync_only && shape.is_async {
        return Err(syn::Error::new(
            f.sig.asyncness.span(),
            format!("the `{name}` hook is not async: {expected}"),
        ));
    }
    if spec.sync_only && !matches!(shape.ret, Ret::Unit) {
        return Err(syn::Error::new(
            f.sig.output.span(),
            format!("the `{name}` hook returns nothing: {expected}"),
        ));
    }
    if !f.sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            f.sig.generics.span(),
            format!("hooks cannot be generic: {expected}"),
        ));
    }
    let contexts = shape.params.iter().filter(|(_, t)| t.is_none()).count();
    let values = shape.params.len() - contexts;
    if contexts > 1 {
        return Err(syn::Error::new(
            f.sig.inputs.span(),
            format!("`{name}` takes one context at most: {expected}"),
        ));
    }
    if values > spec.values.len() {
        let (span, _) = shape
            .params
            .iter()
            .filter(|(_, t)| t.is_some())
            .nth(spec.values.len())
            .map(|(s, t)| (*s, t))
            .unwrap_or((f.sig.inputs.span(), &None));
        return Err(syn::Error::new(
            span,
            format!("too many parameters for the `{name}` hook: {expected}"),
        ));
    }
    Ok(shape)
}

fn expected_signature(spec: &HookSpec) -> String {
    let mut parts = Vec::new();
    if spec.receiver {
        parts.push("&mut self".to_string());
    }
    if spec.name == "run" {
        parts.push("ctx: RunCtx<Self>".to_string());
    } else {
        parts.push("ctx: &mut Ctx<Self>".to_string());
    }
    parts.extend(spec.values.iter().map(|(_, d)| d.to_string()));
    let asyncness = if spec.sync_only { "" } else { "async " };
    format!(
        "expected `{asyncness}fn {}({})` (the context and trailing parameters may be left out)",
        spec.name,
        parts.join(", ")
    )
}

/// The body of the generated hook: calls the user's method with what it asked for and
/// converts the result.
fn hook_call(self_ty: &Type, spec: &HookSpec, method: &Ident, shape: &Shape) -> Tokens {
    let mut args: Vec<Tokens> = Vec::new();
    if spec.receiver {
        args.push(quote!(self));
    }
    let mut values = spec.values.iter();
    for (span, ty) in &shape.params {
        match ty {
            None => {
                args.push(quote_spanned!(*span=> ctx));
            }
            Some(_) => {
                if let Some((expr, _)) = values.next() {
                    let ident = format_ident!("{}", expr);
                    args.push(quote_spanned!(*span=> #ident));
                }
            }
        }
    }
    // Parameters the user left out are not used.
    let unused: Vec<Ident> = values.map(|(e, _)| format_ident!("{}", e)).collect();
    let ctx_used = shape.params.iter().any(|(_, t)| t.is_none());
    let discard_ctx = (!ctx_used).then(|| quote!(let _ = &ctx;));
    let await_ = shape.is_async.then(|| quote!(.await));
    let invoke = quote!(<#self_ty>::#method(#(#args),*) #await_);
    let convert = match (spec.name, &shape.ret) {
        ("on_state_change", _) => quote!(#invoke;),
        ("on_request", Ret::Result) => quote! {
            #invoke
                .map(::rivetkit::__private::IntoRequestAnswer::into_answer)
                .map_err(::rivetkit::__private::into_error)
        },
        ("on_request", _) => quote! {
            ::core::result::Result::Ok(::rivetkit::__private::IntoRequestAnswer::into_answer(#invoke))
        },
        (_, Ret::Unit) => quote! {
            #invoke;
            ::core::result::Result::Ok(())
        },
        (_, Ret::Result) => quote!(#invoke.map_err(::rivetkit::__private::into_error)),
        (_, Ret::Value) => quote!(::core::result::Result::Ok(#invoke)),
    };
    quote! {
        #discard_ctx
        #(let _ = &#unused;)*
        #convert
    }
}

/// One `match` arm of `dispatch`.
fn action_arm(self_ty: &Type, action: &Action) -> Tokens {
    let method = &action.method;
    let name = LitStr::new(&action.name, method.span());
    let mut call_args: Vec<Tokens> = Vec::new();
    if action.shape.receiver.is_some() {
        call_args.push(quote!(self));
    }
    let mut value_types = Vec::new();
    let mut value_idents = Vec::new();
    for (i, (span, ty)) in action.shape.params.iter().enumerate() {
        match ty {
            None => call_args.push(quote_spanned!(*span=> ctx)),
            Some(ty) => {
                let ident = format_ident!("__arg{}", i);
                call_args.push(quote_spanned!(*span=> #ident));
                value_types.push(ty.clone());
                value_idents.push(ident);
            }
        }
    }
    let arity = value_types.len();
    let decode = if arity == 0 {
        quote!(let _ = args;)
    } else {
        quote! {
            let (#(#value_idents,)*): (#(#value_types,)*) =
                ::rivetkit::__private::decode_args(args, #arity)?;
        }
    };
    let invoke = quote!(<#self_ty>::#method(#(#call_args),*).await);
    let output = match action.shape.ret {
        // What a JavaScript action without a return value answers (`undefined`, not `null`).
        Ret::Unit => quote! {
            #invoke;
            ::core::result::Result::Ok(::rivetkit::Value::Undefined)
        },
        Ret::Result => quote! {
            let output = #invoke.map_err(::rivetkit::__private::into_error)?;
            ::rivetkit::__private::encode_output(&output)
        },
        Ret::Value => quote! {
            let output = #invoke;
            ::rivetkit::__private::encode_output(&output)
        },
    };
    quote! {
        #name => ::core::option::Option::Some(::std::boxed::Box::pin(async move {
            #decode
            #output
        })),
    }
}

/// `get_count` → `getCount`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for (i, c) in name.trim_start_matches('_').chars().enumerate() {
        if c == '_' {
            upper = i > 0;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> Result<String, String> {
        let args: Args = syn::parse_str(args).map_err(|e| e.to_string())?;
        let item: ItemImpl = syn::parse_str(item).map_err(|e| e.to_string())?;
        expand(args, item)
            .map(|t| t.to_string())
            .map_err(|e| e.into_compile_error().to_string())
    }

    fn error_of(item: &str) -> String {
        match expand_str("", item) {
            Err(e) => e,
            Ok(out) => panic!("expected an error, got {out}"),
        }
    }

    #[test]
    fn async_fns_become_actions_with_their_client_names() {
        let out = expand_str(
            r#"rename_all = "camelCase""#,
            "impl Counter {
                async fn get_count(&self) -> i64 { 0 }
                #[action(name = \"bump\")] async fn increment(&mut self, by: i64) -> Result<i64, E> { Ok(by) }
                #[action(skip)] async fn helper(&self) {}
                fn plain(&self) {}
            }",
        )
        .unwrap();
        assert!(out.contains("\"getCount\""), "{out}");
        assert!(out.contains("\"bump\""), "{out}");
        assert!(!out.contains("\"helper\""), "{out}");
        assert!(!out.contains("\"plain\""), "{out}");
        // The `#[action]` attributes are consumed.
        assert!(!out.contains("# [action"), "{out}");
    }

    #[test]
    fn associated_types_are_read_off_the_hooks() {
        let out = expand_str(
            "",
            "impl Room {
                async fn create_state(input: RoomInput) -> Self { todo!() }
                async fn create_vars() -> Result<RoomVars, Error> { todo!() }
                async fn on_before_connect(&mut self, params: &JoinParams) {}
                async fn create_conn_state(&mut self, params: &JoinParams) -> Member { todo!() }
            }",
        )
        .unwrap();
        assert!(out.contains("type Input = RoomInput"), "{out}");
        assert!(out.contains("type Vars = RoomVars"), "{out}");
        assert!(out.contains("type ConnParams = JoinParams"), "{out}");
        assert!(out.contains("type ConnState = Member"), "{out}");
    }

    #[test]
    fn mistakes_get_errors_that_say_what_to_write() {
        let cases = [
            ("impl Actor for X { }", "not a trait impl"),
            ("impl<T> X<T> { }", "generic actor types are not supported"),
            ("impl X { type Foo = u8; }", "an actor may declare `Input`"),
            (
                "impl X { async fn on_wake(ctx: &mut Ctx<Self>) {} }",
                "takes `&mut self`",
            ),
            (
                "impl X { async fn create_state(&self) -> Self { todo!() } }",
                "has no `self` receiver",
            ),
            (
                "impl X { async fn on_state_change(&mut self) {} }",
                "is not async",
            ),
            (
                "impl X { async fn on_wake(&mut self, a: u8, b: u8) {} }",
                "too many parameters",
            ),
            (
                "impl X { #[action] fn sync_one(&self) {} }",
                "actions must be `async fn`",
            ),
            ("impl X { async fn take(self) {} }", "not `self`"),
            (
                "impl X { async fn a(&self) {} #[action(name = \"a\")] async fn b(&self) {} }",
                "two actions are named `a`",
            ),
            (
                "impl X { #[action] async fn on_sleep(&mut self) {} }",
                "is a lifecycle hook",
            ),
            (
                "impl X { async fn options() -> ActorOptions { todo!() } }",
                "not async",
            ),
        ];
        for (item, expected) in cases {
            let error = error_of(item);
            assert!(error.contains(expected), "{item}: {error}");
        }
    }

    #[test]
    fn camel_case_names() {
        assert_eq!(camel_case("get_count"), "getCount");
        assert_eq!(camel_case("a_b_c"), "aBC");
        assert_eq!(camel_case("_private_thing"), "privateThing");
        assert_eq!(camel_case("plain"), "plain");
    }
}
