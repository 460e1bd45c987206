/*
 * json_lite.h - the consumer's JSON reader for message payloads: one pass over the bytes into
 * an arena (no allocation per value, no reference counts), read-only values, and exactly the
 * language jansson's json_loadb(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL) accepts (an object or
 * an array at the top, UTF-8 checked everywhere, \u0000 allowed in strings but not in keys,
 * duplicate keys rejected, 64-bit integers and doubles with the same overflow rules, depth at
 * most 2048), except that a raw NUL byte right after a number or literal, which jansson's lexer
 * drops, is an error here. tests/fuzz/fuzz_json.c holds it to that against jansson. Pure.
 *
 * Why: decoding a 512 kB transaction part with jansson spent two thirds of the consumer's CPU
 * in building and freeing its tree (perf, bench W1 replay).
 */
#ifndef XDCR_JSON_LITE_H
#define XDCR_JSON_LITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jl_type {
    JL_OBJECT,
    JL_ARRAY,
    JL_STRING,
    JL_INTEGER,
    JL_REAL,
    JL_TRUE,
    JL_FALSE,
    JL_NULL
} jl_type_t;

typedef struct jl_value jl_value_t;

typedef struct jl_member {
    const char *key; /* NUL-terminated (keys hold no NUL) */
    size_t key_len;
    jl_value_t *value;
} jl_member_t;

struct jl_value {
    jl_type_t type;
    size_t n; /* string: bytes (may hold NULs; NUL-terminated besides); array, object: entries */
    union {
        const char *s;
        int64_t i;
        double r;
        jl_value_t **items;   /* array */
        jl_member_t *members; /* object, in document order */
    } u;
};

/* The memory of parsed documents: chunks, freed together. */
typedef struct jl_chunk jl_chunk_t;
typedef struct jl_arena {
    jl_chunk_t *head;
    size_t next_cap;
} jl_arena_t;

void jl_arena_init(jl_arena_t *a, size_t first_chunk);
void jl_arena_free(jl_arena_t *a);

/* A parse error: byte position and what was wrong. */
typedef struct jl_error {
    size_t position;
    char text[160];
    bool out_of_memory;
} jl_error_t;

/* Parse len bytes; NULL with *err filled on error. The values live in arena a. */
jl_value_t *jl_parse(const char *data, size_t len, jl_arena_t *a, jl_error_t *err);

/* The value of key in object o, or NULL (also when o is no object). */
const jl_value_t *jl_object_get(const jl_value_t *o, const char *key);

static inline size_t jl_array_size(const jl_value_t *v)
{
    return v != NULL && v->type == JL_ARRAY ? v->n : 0;
}

static inline const jl_value_t *jl_array_get(const jl_value_t *v, size_t i)
{
    return v != NULL && v->type == JL_ARRAY && i < v->n ? v->u.items[i] : NULL;
}

#endif
