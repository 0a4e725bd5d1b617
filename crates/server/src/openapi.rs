//! The OpenAPI 3 document, derived from the handlers' and types' annotations so it cannot
//! drift from the code (schemathesis checks the running server against it in the tests).

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api::{
    BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, ModelInfo, ModelsResponse,
    StatusResponse,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;

/// The API description served at `GET /openapi.json`.
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
    )),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
