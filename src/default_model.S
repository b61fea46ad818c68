/* default_model.S - embeds models/default.gguf into the library so that
 * build/infer runs with no model file (bitnet_model_load_default). */
    .section .rodata
    .balign 64
    .global bn_default_model_data
#if defined(__ELF__)
    .hidden bn_default_model_data /* internal: not exported by libbitnet.so */
#endif
bn_default_model_data:
    .incbin "models/default.gguf"
bn_default_model_end:
    .balign 8
    .global bn_default_model_size
#if defined(__ELF__)
    .hidden bn_default_model_size
#endif
bn_default_model_size:
    .quad bn_default_model_end - bn_default_model_data
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
