//! The OpenAPI 3 document, derived from the handlers' and types' annotations so it cannot
//! drift from the code (schemathesis checks the running server against it in the tests).

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

use crate::api::{
    BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, ModelInfo, ModelsResponse,
    StatusResponse,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;

/// The API description; [`document`] adapts it to the server's auth setting.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "seqless",
        description = "Text classification with a TFiLM model, executed monolithically or as a serverless pipeline. \
            Every error is `{\"error\": {\"code\", \"message\"}}`. When the server has a token, every endpoint but \
            /healthz needs `Authorization: Bearer <token>`."
    ),
    paths(
        routes::classify,
        routes::classify_batch,
        routes::models,
        routes::healthz,
        routes::readyz,
        routes::metrics,
        routes::openapi,
    ),
    components(schemas(
        ClassifyRequest,
        BatchRequest,
        ClassifyResponse,
        BatchResponse,
        ModelsResponse,
        ModelInfo,
        StatusResponse,
        ErrorBody,
        ErrorDetail,
    ))
)]
pub struct ApiDoc;

/// The document a server serves, adapted to its settings so it matches what the server does:
/// batches bounded at `max_batch` texts; with a token (`auth`), every operation but
/// `/healthz` requires the `bearer` scheme, and without one, none does.
pub fn document(auth: bool, max_batch: usize) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "BatchRequest".into(),
        BatchRequest::schema_with_max(Some(max_batch)),
    );
    if !auth {
        return doc;
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let protected = doc
        .paths
        .paths
        .iter_mut()
        .filter(|(path, _)| *path != "/healthz");
    for (_, item) in protected {
        for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
            operation.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
        }
    }
    doc
}
