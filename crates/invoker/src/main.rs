//! The invoker Lambda's `bootstrap` (provided.al2023): config and clients once, then the
//! runtime loop. All logic is in the library.

use aws_config::BehaviorVersion;
use czero_invoker::{Config, Invoker, SdkAws};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    czero_invoker::init_tracing();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let invoker = Invoker::new(SdkAws::new(&sdk), config);
    let invoker = &invoker;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<_>| async move {
        invoker.handle(ev).await
    }))
    .await
}
