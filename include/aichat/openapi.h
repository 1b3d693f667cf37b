/*
 * openapi.h - the OpenAPI 3.1 document of serve, generated from the
 * request schema tables and the route table (serve_routes), and the
 * self-contained HTML page served at /docs that renders it.
 */
#ifndef AICHAT_OPENAPI_H
#define AICHAT_OPENAPI_H

/* The document as compact JSON text; owned, free() it. */
char *openapi_document(void);
/* A static HTML page (no external resources) that fetches /openapi.json
 * and renders every route, its request fields and responses. */
const char *openapi_docs_html(void);

#endif
