"""schemathesis extensions for tools/schemathesis/run.sh (loaded with SCHEMATHESIS_HOOKS).

schemathesis checks JSON answers against their JSON Schemas, and skips XML ones: the
OpenAPI document describes an XML body as a string whose `externalDocs.url` names its
XSD under /schemas/. `xml_response_schema_conformance` validates every XML answer
against that XSD (the repository's copy under schemas/, the file the gateway serves),
after taking it out of its SOAP 1.1 or 1.2 Body, where there is one. An XML answer
whose documented schema names no XSD (the TwoFactor controller's `<Error>`) is only
required to be well-formed.
"""

import functools
import os

import schemathesis
from lxml import etree

SCHEMAS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "schemas")
SOAP_NAMESPACES = {
    "http://schemas.xmlsoap.org/soap/envelope/",  # SOAP 1.1
    "http://www.w3.org/2003/05/soap-envelope",  # SOAP 1.2
}


@functools.cache
def xsd(url):
    """The XSD that the document's `/schemas/…` URL names, from the repository."""
    path = os.path.join(SCHEMAS, url.removeprefix("/schemas/"))
    return etree.XMLSchema(etree.parse(path))


def documented_xsd(case, status, media_type):
    """The `externalDocs.url` of the documented schema of this answer, if any."""
    responses = case.operation.definition.raw.get("responses", {})
    response = responses.get(str(status)) or responses.get("default") or {}
    content = response.get("content", {})
    schema = (content.get(media_type) or {}).get("schema") or {}
    return (schema.get("externalDocs") or {}).get("url")


def unwrap_soap(root):
    """The element a SOAP Envelope's Body holds, or `root` when it is no envelope."""
    qname = etree.QName(root)
    if qname.localname != "Envelope" or qname.namespace not in SOAP_NAMESPACES:
        return root
    body = root.find(f"{{{qname.namespace}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise AssertionError("The SOAP answer's Body does not hold exactly one element")
    return children[0]


@schemathesis.check
def xml_response_schema_conformance(ctx, response, case):
    content_type = (response.headers.get("content-type") or [""])[0]
    media_type = content_type.split(";")[0].strip().lower()
    if not (media_type.endswith("/xml") or media_type.endswith("+xml")):
        return True
    try:
        root = etree.fromstring(
            response.content, etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as e:
        raise AssertionError(f"The {media_type} answer is not well-formed XML: {e}") from None
    url = documented_xsd(case, response.status_code, media_type)
    if url is None or not url.endswith(".xsd"):
        return True
    element = unwrap_soap(root)
    schema = xsd(url)
    if not schema.validate(etree.ElementTree(element)):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise AssertionError(f"The {media_type} answer does not follow {url}: {errors}")
    return True
