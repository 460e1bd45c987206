/*
 * pg_types.c - names of PostgreSQL's built-in types by OID, and formatting of type names from
 * Type messages, the way format_type() and quote_ident() print them. Pure: no I/O.
 * The tables were generated from a PostgreSQL 15 cluster (pg_type, pg_get_keywords()).
 */
#include "pgoutput.h"
#include "xdcr/schema_check.h"

#include <stdlib.h>
#include <string.h>

typedef struct builtin_type {
    uint32_t oid;
    const char *name;
} builtin_type_t;

/*
 * SELECT oid, format_type(oid, -1) FROM pg_type WHERE oid < 10000 ORDER BY oid;
 * format_type(oid, -1) rather than format_type(oid, NULL): the names differ only for bpchar and
 * bit, where "character" and "bit" would mean length 1 when used in a cast and lose data.
 * Every type with an OID of 10000 or more comes with a Type message instead.
 */
static const builtin_type_t builtin_types[] = {
    {16, "boolean"},
    {17, "bytea"},
    {18, "\"char\""},
    {19, "name"},
    {20, "bigint"},
    {21, "smallint"},
    {22, "int2vector"},
    {23, "integer"},
    {24, "regproc"},
    {25, "text"},
    {26, "oid"},
    {27, "tid"},
    {28, "xid"},
    {29, "cid"},
    {30, "oidvector"},
    {32, "pg_ddl_command"},
    {71, "pg_type"},
    {75, "pg_attribute"},
    {81, "pg_proc"},
    {83, "pg_class"},
    {114, "json"},
    {142, "xml"},
    {143, "xml[]"},
    {194, "pg_node_tree"},
    {199, "json[]"},
    {210, "pg_type[]"},
    {269, "table_am_handler"},
    {270, "pg_attribute[]"},
    {271, "xid8[]"},
    {272, "pg_proc[]"},
    {273, "pg_class[]"},
    {325, "index_am_handler"},
    {600, "point"},
    {601, "lseg"},
    {602, "path"},
    {603, "box"},
    {604, "polygon"},
    {628, "line"},
    {629, "line[]"},
    {650, "cidr"},
    {651, "cidr[]"},
    {700, "real"},
    {701, "double precision"},
    {705, "unknown"},
    {718, "circle"},
    {719, "circle[]"},
    {774, "macaddr8"},
    {775, "macaddr8[]"},
    {790, "money"},
    {791, "money[]"},
    {829, "macaddr"},
    {869, "inet"},
    {1000, "boolean[]"},
    {1001, "bytea[]"},
    {1002, "\"char\"[]"},
    {1003, "name[]"},
    {1005, "smallint[]"},
    {1006, "int2vector[]"},
    {1007, "integer[]"},
    {1008, "regproc[]"},
    {1009, "text[]"},
    {1010, "tid[]"},
    {1011, "xid[]"},
    {1012, "cid[]"},
    {1013, "oidvector[]"},
    {1014, "bpchar[]"},
    {1015, "character varying[]"},
    {1016, "bigint[]"},
    {1017, "point[]"},
    {1018, "lseg[]"},
    {1019, "path[]"},
    {1020, "box[]"},
    {1021, "real[]"},
    {1022, "double precision[]"},
    {1027, "polygon[]"},
    {1028, "oid[]"},
    {1033, "aclitem"},
    {1034, "aclitem[]"},
    {1040, "macaddr[]"},
    {1041, "inet[]"},
    {1042, "bpchar"},
    {1043, "character varying"},
    {1082, "date"},
    {1083, "time without time zone"},
    {1114, "timestamp without time zone"},
    {1115, "timestamp without time zone[]"},
    {1182, "date[]"},
    {1183, "time without time zone[]"},
    {1184, "timestamp with time zone"},
    {1185, "timestamp with time zone[]"},
    {1186, "interval"},
    {1187, "interval[]"},
    {1231, "numeric[]"},
    {1248, "pg_database"},
    {1263, "cstring[]"},
    {1266, "time with time zone"},
    {1270, "time with time zone[]"},
    {1560, "\"bit\""},
    {1561, "\"bit\"[]"},
    {1562, "bit varying"},
    {1563, "bit varying[]"},
    {1700, "numeric"},
    {1790, "refcursor"},
    {2201, "refcursor[]"},
    {2202, "regprocedure"},
    {2203, "regoper"},
    {2204, "regoperator"},
    {2205, "regclass"},
    {2206, "regtype"},
    {2207, "regprocedure[]"},
    {2208, "regoper[]"},
    {2209, "regoperator[]"},
    {2210, "regclass[]"},
    {2211, "regtype[]"},
    {2249, "record"},
    {2275, "cstring"},
    {2276, "\"any\""},
    {2277, "anyarray"},
    {2278, "void"},
    {2279, "trigger"},
    {2280, "language_handler"},
    {2281, "internal"},
    {2283, "anyelement"},
    {2287, "record[]"},
    {2776, "anynonarray"},
    {2842, "pg_authid"},
    {2843, "pg_auth_members"},
    {2949, "txid_snapshot[]"},
    {2950, "uuid"},
    {2951, "uuid[]"},
    {2970, "txid_snapshot"},
    {3115, "fdw_handler"},
    {3220, "pg_lsn"},
    {3221, "pg_lsn[]"},
    {3310, "tsm_handler"},
    {3361, "pg_ndistinct"},
    {3402, "pg_dependencies"},
    {3500, "anyenum"},
    {3614, "tsvector"},
    {3615, "tsquery"},
    {3642, "gtsvector"},
    {3643, "tsvector[]"},
    {3644, "gtsvector[]"},
    {3645, "tsquery[]"},
    {3734, "regconfig"},
    {3735, "regconfig[]"},
    {3769, "regdictionary"},
    {3770, "regdictionary[]"},
    {3802, "jsonb"},
    {3807, "jsonb[]"},
    {3831, "anyrange"},
    {3838, "event_trigger"},
    {3904, "int4range"},
    {3905, "int4range[]"},
    {3906, "numrange"},
    {3907, "numrange[]"},
    {3908, "tsrange"},
    {3909, "tsrange[]"},
    {3910, "tstzrange"},
    {3911, "tstzrange[]"},
    {3912, "daterange"},
    {3913, "daterange[]"},
    {3926, "int8range"},
    {3927, "int8range[]"},
    {4066, "pg_shseclabel"},
    {4072, "jsonpath"},
    {4073, "jsonpath[]"},
    {4089, "regnamespace"},
    {4090, "regnamespace[]"},
    {4096, "regrole"},
    {4097, "regrole[]"},
    {4191, "regcollation"},
    {4192, "regcollation[]"},
    {4451, "int4multirange"},
    {4532, "nummultirange"},
    {4533, "tsmultirange"},
    {4534, "tstzmultirange"},
    {4535, "datemultirange"},
    {4536, "int8multirange"},
    {4537, "anymultirange"},
    {4538, "anycompatiblemultirange"},
    {4600, "pg_brin_bloom_summary"},
    {4601, "pg_brin_minmax_multi_summary"},
    {5017, "pg_mcv_list"},
    {5038, "pg_snapshot"},
    {5039, "pg_snapshot[]"},
    {5069, "xid8"},
    {5077, "anycompatible"},
    {5078, "anycompatiblearray"},
    {5079, "anycompatiblenonarray"},
    {5080, "anycompatiblerange"},
    {6101, "pg_subscription"},
    {6150, "int4multirange[]"},
    {6151, "nummultirange[]"},
    {6152, "tsmultirange[]"},
    {6153, "tstzmultirange[]"},
    {6155, "datemultirange[]"},
    {6157, "int8multirange[]"},
};

/* SELECT word FROM pg_get_keywords() WHERE catcode <> 'U' ORDER BY word; (C collation) */
static const char *const quoted_keywords[] = {
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
};

static int cmp_type(const void *key, const void *elem)
{
    uint32_t oid = *(const uint32_t *)key;
    const builtin_type_t *t = elem;

    return oid < t->oid ? -1 : oid > t->oid ? 1 : 0;
}

const char *fwd_pg_type_name(uint32_t oid)
{
    const builtin_type_t *t =
        bsearch(&oid, builtin_types, sizeof(builtin_types) / sizeof(builtin_types[0]),
                sizeof(builtin_types[0]), cmp_type);

    return t != NULL ? t->name : NULL;
}

static int cmp_keyword(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* quote_ident(): unquoted only for [a-z_][a-z0-9_]* that is not a non-unreserved keyword. */
static bool needs_quotes(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
        return true;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return true;
    return bsearch(s, quoted_keywords, sizeof(quoted_keywords) / sizeof(quoted_keywords[0]),
                   sizeof(quoted_keywords[0]), cmp_keyword) != NULL;
}

/* Append c to buf when there is room for it and a NUL; always count it. */
static void put(char *buf, size_t len, size_t *n, char c)
{
    if (buf != NULL && *n + 1 < len)
        buf[*n] = c;
    (*n)++;
}

static void put_ident(char *buf, size_t len, size_t *n, const char *s)
{
    bool quote = needs_quotes(s);

    if (quote)
        put(buf, len, n, '"');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"')
            put(buf, len, n, '"');
        put(buf, len, n, *p);
    }
    if (quote)
        put(buf, len, n, '"');
}

/* name (with its quotes) as format_type() prints it: "int4" -> integer, "_int4" -> integer[] */
static void put_catalog_type(char *buf, size_t len, size_t *n, const char *name)
{
    const char *canon;

    if (name[0] == '_' && name[1] != '\0') { /* pg_catalog's array types: _int4 */
        put_catalog_type(buf, len, n, name + 1);
        put(buf, len, n, '[');
        put(buf, len, n, ']');
        return;
    }
    canon = xdcr_type_canonical(name);
    if (canon == name) {
        put_ident(buf, len, n, name);
        return;
    }
    for (const char *p = canon; *p != '\0'; p++) /* already quoted where it must be */
        put(buf, len, n, *p);
}

size_t fwd_pg_format_type(char *buf, size_t len, const char *nspname, const char *name)
{
    size_t n = 0;

    if (nspname[0] != '\0' && strcmp(nspname, "pg_catalog") != 0) {
        put_ident(buf, len, &n, nspname);
        put(buf, len, &n, '.');
        put_ident(buf, len, &n, name);
    } else {
        /* a Type message names a domain by its base type, by the internal name */
        put_catalog_type(buf, len, &n, name);
    }
    if (buf != NULL && len > 0)
        buf[n < len ? n : len - 1] = '\0';
    return n;
}
