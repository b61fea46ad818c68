/* chat_page.S - embeds server/chat.html into build/server (GET /). */
    .section .rodata
    .global bn_chat_page
#if defined(__ELF__)
    .hidden bn_chat_page
#endif
bn_chat_page:
    .incbin "server/chat.html"
bn_chat_page_end:
    .balign 8
    .global bn_chat_page_size
#if defined(__ELF__)
    .hidden bn_chat_page_size
#endif
bn_chat_page_size:
    .quad bn_chat_page_end - bn_chat_page
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
