# The omni3 SFT's multimodal chats from Debian's packages (needs dataset-fashion-mnist, espeak-ng,
# wamerican, wordnet-base, and python3-sklearn's .deb or its cached digits; skipped when they are
# not there). Checks the JSONL and decodes every PNG and WAV with python3's standard library.
add_test(NAME sft_make_omni_chats
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/make_omni_chats_test.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(sft_make_omni_chats PROPERTIES LABELS sft SKIP_RETURN_CODE 77 TIMEOUT 600)
