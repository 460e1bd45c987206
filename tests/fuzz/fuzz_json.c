/*
 * fuzz_json.c - differential libFuzzer target: json_lite (the consumer's payload reader) against
 * jansson's json_loadb(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL), which it replaces on the hot
 * path. Both must accept or both reject every input, and what they accept must be the same
 * document: types, integers, doubles bit for bit, string bytes, array order, object members.
 * One known difference: jansson skips a raw NUL byte right after a number or a literal (its
 * lexer loses an un-read NUL), json_lite rejects it; for inputs holding a raw NUL json_lite must
 * only never accept what jansson rejects.
 */
#include "xdcr/json_lite.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const uint8_t *data, size_t size)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_json: %s for %zu bytes: %.*s\n", what, size,
            (int)(size < 200 ? size : 200), (const char *)data);
    abort();
}

static bool same(const jl_value_t *a, const json_t *b)
{
    switch (a->type) {
    case JL_OBJECT:
        if (!json_is_object(b) || json_object_size(b) != a->n)
            return false;
        for (size_t i = 0; i < a->n; i++) {
            const json_t *v = json_object_get(b, a->u.members[i].key);

            if (v == NULL || strlen(a->u.members[i].key) != a->u.members[i].key_len ||
                !same(a->u.members[i].value, v))
                return false;
        }
        return true;
    case JL_ARRAY:
        if (!json_is_array(b) || json_array_size(b) != a->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!same(a->u.items[i], json_array_get(b, i)))
                return false;
        return true;
    case JL_STRING:
        return json_is_string(b) && json_string_length(b) == a->n &&
               memcmp(json_string_value(b), a->u.s, a->n) == 0 && a->u.s[a->n] == '\0';
    case JL_INTEGER:
        return json_is_integer(b) && json_integer_value(b) == a->u.i;
    case JL_REAL: {
        double r = json_is_real(b) ? json_real_value(b) : 0;

        return json_is_real(b) && memcmp(&r, &a->u.r, sizeof(r)) == 0;
    }
    case JL_TRUE:
        return json_is_true(b);
    case JL_FALSE:
        return json_is_false(b);
    case JL_NULL:
        return json_is_null(b);
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jl_arena_t a;
    jl_error_t err;
    json_error_t jerr;
    json_t *j =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    jl_value_t *v;

    jl_arena_init(&a, size * 2);
    v = jl_parse((const char *)data, size, &a, &err);
    if (memchr(data, '\0', size) == NULL || v != NULL)
        check((v != NULL) == (j != NULL),
              v != NULL ? "json_lite accepts what jansson rejects"
                        : "json_lite rejects what jansson accepts",
              data, size);
    if (v == NULL)
        check(err.text[0] != '\0' && err.position <= size, "an error without text or position",
              data, size);
    else if (j != NULL)
        check(same(v, j), "the documents differ", data, size);
    json_decref(j);
    jl_arena_free(&a);
    return 0;
}
