/* Where the records of a CSV or JSON Lines block end, in one pass at memory speed.
 *
 * The planner reads every byte of a text input once before it can cut it into mini-batches;
 * numpy needs five passes over each byte for the quote parity and the check of the quotes
 * that open a field, which cost more CPU than the workers' reading of the same file. This
 * is that pass: SSE2 marks the bytes that matter (newlines, carriage returns, quotes) 16 at
 * a time, and a state machine steps over those alone. The rules (what a record
 * end is, which quote is out of place, which carriage return is alone) are described in
 * tabular_cuts, which wraps this module; the tests hold it to a byte-by-byte Python scan.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* What the scan of a block found; the ends are offsets just past each record's newline. */
typedef struct {
    int64_t *ends;
    Py_ssize_t count;
    Py_ssize_t capacity;
    int in_quotes;
    Py_ssize_t lone_return;
    Py_ssize_t stray_quote;
} Found;

static int push_end(Found *found, Py_ssize_t end) {
    if (found->count == found->capacity) {
        Py_ssize_t capacity = found->capacity ? 2 * found->capacity : 4096;
        int64_t *grown = realloc(found->ends, (size_t)capacity * sizeof(int64_t));
        if (grown == NULL) {
            return -1;
        }
        found->ends = grown;
        found->capacity = capacity;
    }
    found->ends[found->count++] = (int64_t)end;
    return 0;
}

/* Bytes a quote that opens a field may follow: the delimiter, a line end, the quote before
 * it (a doubled quote inside a quoted field). */
static int field_edge(int byte) {
    return byte == ',' || byte == '\n' || byte == '\r' || byte == '"';
}

/* The index of the lowest set bit of MASK (not 0), in plain C for any compiler: the bit
 * alone, times a de Bruijn sequence, leaves a distinct number in the top five bits. */
static int lowest_bit(uint32_t mask) {
    static const int index[32] = {0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20,
                                  15, 25, 17, 4,  8,  31, 27, 13, 23, 21, 19,
                                  16, 7,  26, 12, 18, 6,  11, 5,  10, 9};
    return index[(uint32_t)((mask & (0u - mask)) * 0x077CB531u) >> 27];
}

/* Which of the 16 bytes from AT (fewer at the block's end) are a newline, a carriage
 * return or a quote: bit i for byte AT + i. With SSE2 (every x86-64) in a few instructions;
 * the bytes between them are most of a CSV's. */
static unsigned special_bytes(const unsigned char *data, Py_ssize_t at, Py_ssize_t size) {
#if defined(__SSE2__)
    if (at + 16 <= size) {
        const __m128i chunk = _mm_loadu_si128((const __m128i *)(data + at));
        const __m128i hits = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(chunk, _mm_set1_epi8('\n')),
                         _mm_cmpeq_epi8(chunk, _mm_set1_epi8('\r'))),
            _mm_cmpeq_epi8(chunk, _mm_set1_epi8('"')));
        return (unsigned)_mm_movemask_epi8(hits);
    }
#endif
    unsigned mask = 0;
    for (Py_ssize_t i = 0; i < 16 && at + i < size; i++) {
        unsigned char byte = data[at + i];
        if (byte == '\n' || byte == '\r' || byte == '"') {
            mask |= 1u << i;
        }
    }
    return mask;
}

/* JSON Lines: every newline ends a line (JSON strings cannot hold a raw one). */
static int scan_lines(const char *data, Py_ssize_t size, Found *found) {
    const char *at = data, *stop = data + size;
    while (at < stop) {
        const char *newline = memchr(at, '\n', (size_t)(stop - at));
        if (newline == NULL) {
            break;
        }
        if (push_end(found, newline - data + 1) < 0) {
            return -1;
        }
        at = newline + 1;
    }
    return 0;
}

/* CSV: BYTE_BEFORE is the previous block's last byte (-1: the file starts here, which a
 * quote may follow), FIELD_START the offset where the file's first field starts when in
 * this block (after a byte order mark, whatever precedes it). */
static int scan_csv(const unsigned char *data, Py_ssize_t size, int byte_before,
                    Py_ssize_t field_start, Found *found) {
    for (Py_ssize_t base = 0; base < size; base += 16) {
        for (unsigned mask = special_bytes(data, base, size); mask; mask &= mask - 1) {
            Py_ssize_t at = base + lowest_bit(mask);
            unsigned char byte = data[at];
            if (found->in_quotes) {
                found->in_quotes = byte != '"';
            } else if (byte == '\n') {
                if (push_end(found, at + 1) < 0) {
                    return -1;
                }
            } else if (byte == '\r') {
                if (at + 1 < size && data[at + 1] != '\n' && found->lone_return < 0) {
                    found->lone_return = at;
                }
            } else {
                int before = at ? data[at - 1] : byte_before;
                if (found->stray_quote < 0 && at != field_start && before >= 0 &&
                    !field_edge(before)) {
                    found->stray_quote = at;
                }
                found->in_quotes = 1;
            }
        }
    }
    return 0;
}

PyDoc_STRVAR(scan_doc,
"scan(block, csv, in_quotes, byte_before, field_start)\n"
"-> (ends, in_quotes, lone_return, stray_quote)\n\n"
"ends: native int64 offsets just past each newline that ends a record (for JSON Lines,\n"
"every newline); in_quotes: the block ends inside a quoted field; lone_return: the offset\n"
"of the first carriage return outside quotes followed by a byte other than a newline\n"
"(-1: none; a last byte is not judged); stray_quote: the offset of the first quote that\n"
"opens a field without following a field's edge (-1: none). IN_QUOTES: the block starts\n"
"inside a quoted field; BYTE_BEFORE: the previous block's last byte, -1 at the file's\n"
"start; FIELD_START: the offset of the file's first field in this block (else -1).");

static PyObject *scan(PyObject *module, PyObject *args) {
    Py_buffer block;
    int csv, in_quotes, byte_before;
    Py_ssize_t field_start;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*ppin:scan", &block, &csv, &in_quotes, &byte_before,
                          &field_start)) {
        return NULL;
    }
    if (byte_before < -1 || byte_before > 255) {
        PyBuffer_Release(&block);
        PyErr_SetString(PyExc_ValueError, "scan: byte_before is a byte (0-255) or -1");
        return NULL;
    }
    Found found = {NULL, 0, 0, csv && in_quotes, -1, -1};
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = csv ? scan_csv(block.buf, block.len, byte_before, field_start, &found)
                 : scan_lines(block.buf, block.len, &found);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&block);
    if (failed) {
        free(found.ends);
        return PyErr_NoMemory();
    }
    PyObject *ends = PyBytes_FromStringAndSize((const char *)found.ends,
                                               found.count * (Py_ssize_t)sizeof(int64_t));
    free(found.ends);
    if (ends == NULL) {
        return NULL;
    }
    return Py_BuildValue("(NOnn)", ends, found.in_quotes ? Py_True : Py_False,
                         found.lone_return, found.stray_quote);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef record_scan_module = {
    PyModuleDef_HEAD_INIT, "record_scan",
    "Record ends, lone carriage returns and stray quotes of a text block, in one pass.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_record_scan(void) {
    return PyModule_Create(&record_scan_module);
}
