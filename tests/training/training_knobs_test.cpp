// The training knobs against PyTorch in float64 (tests/reference/training_knobs_torch.py prints
// the expected numbers): label smoothing, clip_grad_norm, optimizer.decay "weights", gradient
// accumulation, onecycle and plateau; and each with --resume mid-run bit for bit on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <string>
#include <utility>
#include <vector>

#include "mlpx/checkpoint.h"
#include "mlpx/dataset.h"
#include "mlpx/schedule.h"
#include "mlpx/training.h"
#include "test_util.h"

namespace mlpx {
namespace {

// Printed by tests/reference/training_knobs_torch.py (torch 1.13, float64).
const double kLabelSmoothingParams[] = {
    0.49996266478422724,  0.46362638591774175,  -0.23384608705672905,  -0.5534043756844518,
    0.6102292198690848,   0.09757634120717515,  -0.5436290788593348,   -0.381643947141254,
    0.4686879826734443,   -0.2656172729561385,  -0.5524602651627111,   -0.004405109563704752,
    0.027640699063069374, -0.5681424534908962,  -0.32845073021456783,  0.39460946671614394,
    -0.3711616674097039,  -0.5941015548682368,  0.010239507700065452,  0.5329850949827899,
    -0.08826126708917771, -0.19609015804483607, -0.1563408103700687,   -0.0040458146288543705,
    0.15328891821761303,  -0.4495735531021687,  -0.49718255875612966,  0.19706219748826723,
    0.6070611726633243,   0.10400011616043575,  -0.5957912253288168,   -0.16230404540387125,
    0.500587445798013,    0.42932621864497433,  -0.24781662500380242,  -0.42094051711559294,
    0.2841795482858211,   0.5928429504403264,   0.05090540120818772,   -0.5452886358023782,
    -0.20202015754203534, -0.14169756703838524, 0.022632817779210092,  0.3178019627302343,
    0.4067309216452402,   -0.18327411680049957, 0.6692909368272395,    0.3818432697535896,
    -0.38193343779143774, -0.07021789341953596, -0.023208356868671204,
};
const double kLabelSmoothingMomentumBuffer[] = {
    0.01296225662641224,   -0.055561669742325195, -0.10467630635079317,   -0.11722449759468626,
    -0.0382809842160198,   -0.02778130976776514,  -0.007576824544329525,  0.015274463479051198,
    -0.20945476025402018,  -0.16592903557047373,  -0.06443952495383341,   0.05956056566595441,
    -0.006919032661886058, -0.002439134853950862, 0.002892822932819719,   0.007214234442118038,
    0.020096161663117798,  0.1385824760010333,    0.20865794442891927,    0.20584318974102983,
    0.017836398147953222,  0.008899934401036327,  -0.008092350077648067,  0.004012104088647025,
    0.010103383769888154,  -0.02034202776449483,  -0.0065272790828932205, -0.03215257365804787,
    -0.03540762851613475,  0.10781984413655687,   -0.01343432136858265,   -0.020307761894392522,
    0.02590198080197932,   0.042703002599445206,  -0.07266791913965615,   -0.12682784661070284,
    -0.1383875968426502,   -0.010266554135597503, 0.08460390083662775,    -0.022934920503618703,
    0.02461638432820967,   -0.01215105587747109,  -0.01838902419584297,   0.27661017445314745,
    0.4368605863833715,    0.18711880585989007,   -0.2766101744531475,    -0.4368605863833714,
    -0.18711880585988994,  -0.19720243614773303,  0.19720243614773278,
};
const double kLabelSmoothingLrs[] = {
    0.1,
    0.1,
    0.1,
    0.1,
};
const double kClipGradNormParams[] = {
    0.47752498038125674,  0.4868000437913657,   -0.2257624221438373,    -0.5498170622267252,
    0.6223805337341629,   0.1066405491573765,   -0.5347136512875825,    -0.38278556290602234,
    0.4450076490265731,   -0.2792972775509349,  -0.5435510111779207,    -0.02093434664211878,
    0.034844762990188995, -0.5387236758293579,  -0.30041113146147524,   0.4155548535495199,
    -0.3729778790841544,  -0.5951250631425407,  0.030013631893168486,   0.5531854777274005,
    -0.11954352210789541, -0.2207547989098328,  -0.1267286720751406,    -0.013322100358136572,
    0.1534890561962144,   -0.4143044754814616,  -0.47922095600135817,   0.21948926818658251,
    0.6359395720568611,   0.09444892821902136,  -0.5642449422166637,    -0.13500761341478737,
    0.4812423711364613,   0.4073345777872453,   -0.24316648164268762,   -0.42654765775603776,
    0.2826847883427192,   0.5868239510910574,   0.03508861431104979,    -0.5235924963410669,
    -0.20010234069894528, -0.13650579364969906, 0.02445663045830548,    0.3544998641614677,
    0.5032161632996864,   -0.13165220541685785, 0.6325930353960059,     0.28535802809914335,
    -0.43355534917507943, -0.0910752792771263,  -0.0023509710110809334,
};
const double kClipGradNormExpAvg[] = {
    0.0010721591917313472,  -0.007992964064481326,  -0.01426591501395067,    -0.015555371416095044,
    -0.004527798986996835,  -0.0029931542878659048, -0.00041291468239385395, 0.0023115679012683686,
    -0.02737728123317891,   -0.021573145077284382,  -0.008232888682613494,   0.007983352590588905,
    -0.0016315956892008349, -0.001743677810443871,  -0.0012466431065732734,  -0.0003141200994292551,
    0.00313762716485748,    0.017597134419933817,   0.0259094563493912,      0.0251708597562667,
    0.0022035505213923055,  0.0006652599719983587,  -0.0007169097050871902,  0.0009354909321715321,
    0.001080686957928264,   -0.0017409105380041822, -0.00019948083368799774, -0.0032991309698223964,
    -0.0034115945929364495, 0.011289615999250891,   -0.0026378070448882973,  -0.004017853641435768,
    0.0028437924409165307,  0.006461725122084899,   -0.008405273875029522,   -0.015086524684804373,
    -0.017136980928671566,  -0.0017827038865246482, 0.010211223127220254,    -0.0024429598909952695,
    0.0026747726805517093,  -0.00204835960775007,   -0.0025602438306288086,  0.03250934472216965,
    0.04791960013306363,    0.01924966721312571,    -0.03250934472216965,    -0.04791960013306363,
    -0.019249667213125713,  -0.02306175518844136,   0.02306175518844136,
};
const double kClipGradNormExpAvgSq[] = {
    2.5202668148614677e-07, 2.2558087003136676e-06, 7.069938095946324e-06,  8.555030312241993e-06,
    3.0680621531904356e-06, 3.7475083967853186e-06, 2.3310151477093132e-06, 6.250142781813309e-07,
    2.627662922826256e-05,  1.797058992116811e-05,  4.9762480638901675e-06, 3.865086298373671e-06,
    1.8766604207659293e-07, 2.1715245055302223e-07, 1.9067118287603477e-07, 1.4199338901734755e-07,
    9.157753887971871e-07,  1.0693040624463147e-05, 2.2953066216524e-05,    2.2060831667589473e-05,
    2.0494799415167882e-07, 3.244747480958504e-08,  3.019093167430777e-08,  5.696600832032476e-08,
    1.6294076203713478e-07, 1.0337191870536349e-07, 4.9564209236645776e-08, 7.572252100552596e-07,
    5.00498352191159e-07,   4.6484056406685635e-06, 3.0153113108426686e-07, 8.282629032019797e-07,
    9.872354883876305e-07,  2.1751898997093226e-06, 5.919114928376248e-06,  1.0844941604712455e-05,
    1.0374545552645749e-05, 1.983730098163964e-06,  3.6473689366015556e-06, 5.26241773405066e-07,
    9.535843734770454e-07,  3.077597527621352e-07,  6.270918151086149e-07,  3.6490069943450816e-05,
    9.456923618002252e-05,  6.555001528208557e-05,  3.649006994345083e-05,  9.456923618002253e-05,
    6.555001528208557e-05,  1.8831916588819672e-05, 1.8831916588819685e-05,
};
const double kClipGradNormNorms[] = {
    0.5127800079831932,
    0.33197586414610736,
    0.42544114610325834,
    0.27423014445155286,
};
const double kClipGradNormLrs[] = {
    0.01,
    0.01,
    0.01,
    0.01,
};
const double kDecayWeightsAdamwParams[] = {
    0.4755506526576409,   0.4849514295166135,   -0.22480313084322665,  -0.547581409532778,
    0.6200063338666547,   0.10640112512558751,  -0.5323435112673516,   -0.38120656133535413,
    0.44327476554945056,  -0.27818345174677067, -0.5413451694283193,   -0.02092664957970823,
    0.03466949512202514,  -0.5364573251753096,  -0.2991534232282482,   0.41397142417278765,
    -0.37141381488471475, -0.5928602018866602,  0.02982383141047512,   0.5509367846508965,
    -0.11960038523168876, -0.22094161332424558, -0.1267410775088955,   -0.013261387192679195,
    0.1535826657094586,   -0.4125568771825187,  -0.47734163323069,     0.2186442727728132,
    0.6335464930842422,   0.09405274706012,     -0.5617916227078437,   -0.1343429113431403,
    0.4792866992349714,   0.4055670558664729,   -0.24217904662095763,  -0.4248699951905004,
    0.2816208774354671,   0.5842127801776168,   0.034855066149980685,  -0.5214338427704257,
    -0.19994891851246113, -0.13656050943666523, 0.02445188909893943,   0.3529807615951749,
    0.5012280837957299,   -0.1312224292006632,  0.6301696849740817,    0.2841965391291447,
    -0.43172768415796886, -0.09111042550651485, -0.002315824781692389,
};
const double kDecayWeightsAdamwExpAvg[] = {
    0.0010825177219870533,  -0.008022285984888824,  -0.014324674394626084,   -0.015623041914850457,
    -0.004582971165447115,  -0.003051049519017243,  -0.00045330849634882806, 0.002302786225861554,
    -0.027485548142437043,  -0.02168713381917738,   -0.008312779710121444,   0.007965467511853827,
    -0.0016110732322966886, -0.0017298254914289782, -0.0012442999390132562,  -0.0003241046191661815,
    0.003122041804646235,   0.01764474538096148,    0.026003631753194863,    0.025278701424854354,
    0.0022006271456498664,  0.0006710251379097913,  -0.0007165333955218808,  0.0009249034641040794,
    0.0010716655651653404,  -0.0017377762262240305, -0.00019270743604031553, -0.003324101650585147,
    -0.0034321861189597794, 0.011301231532623187,   -0.002648319499047997,   -0.00402758010031374,
    0.0028729057185687217,  0.006460180669143096,   -0.008488376181338178,   -0.015178738885751993,
    -0.017187694755565856,  -0.001732225313385808,  0.010239303389342586,    -0.0024874115730797665,
    0.0026366513608817883,  -0.0020374400532962977, -0.0025555009058379997,  0.03266251890344127,
    0.048189605594946616,   0.019578901344092518,   -0.03266251890344129,    -0.04818960559494661,
    -0.019578901344092518,  -0.023157279912160593,  0.023157279912160586,
};
const double kDecayWeightsAdamwExpAvgSq[] = {
    2.5547360445310703e-07, 2.275032758437508e-06,  7.155206080219556e-06,  8.672384218910976e-06,
    3.125092638633749e-06,  3.8050377120271245e-06, 2.3549901539967224e-06, 6.241731265787842e-07,
    2.6603888437926234e-05, 1.8294429323808544e-05, 5.1009279244653775e-06, 3.848851957081393e-06,
    1.8536819135124188e-07, 2.1484395777983403e-07, 1.9232985695490853e-07, 1.4653777248835344e-07,
    9.155708920058926e-07,  1.0755463339220012e-05, 2.3184751141615457e-05, 2.235255633004198e-05,
    2.0396333100020032e-07, 3.275310780300494e-08,  3.020733803503409e-08,  5.626420999246134e-08,
    1.6140918590580978e-07, 1.0290722870655905e-07, 5.083733013613725e-08,  7.730004122980013e-07,
    5.053035426798762e-07,  4.689139754715376e-06,  3.0170513577584904e-07, 8.289953253008789e-07,
    1.0141766121298273e-06, 2.1664182201161097e-06, 6.078568331782624e-06,  1.1079322556283168e-05,
    1.0473110264306535e-05, 1.9949980613983173e-06, 3.6739645178833743e-06, 5.478197449660682e-07,
    9.424849848245866e-07,  3.0618239681493767e-07, 6.242839541811856e-07,  3.6862630259491624e-05,
    9.655292657276942e-05,  6.729253780834397e-05,  3.6862630259491664e-05, 9.655292657276945e-05,
    6.729253780834397e-05,  1.9061248192267962e-05, 1.906124819226795e-05,
};
const double kDecayWeightsAdamwLrs[] = {
    0.01,
    0.01,
    0.01,
    0.01,
};
const double kDecayWeightsSgdParams[] = {
    0.4552731846802933,   0.4250433434255329,   -0.20836091744730562,  -0.49915140138582287,
    0.5579476345387964,   0.09071529334665766,  -0.4942545856493625,   -0.3479339576616194,
    0.43596909707647363,  -0.23421098258408987, -0.49950627378097834,  -0.00560454993445395,
    0.02517187167852885,  -0.5178529290077535,  -0.29973641990133315,  0.3588677430955336,
    -0.3394465049486274,  -0.5472855215128503,  0.0005745334559472938, 0.4771678849694635,
    -0.08818729830123156, -0.19654553825699034, -0.15655449917225267,  -0.003930127967211,
    0.1538475436095988,   -0.4086292794198083,  -0.45279447765164405,  0.18110654289037523,
    0.5551446909858736,   0.09192342098715087,  -0.5422567563685132,   -0.1470205003274074,
    0.4545728840069857,   0.38899484607087886,  -0.22346585038411765,  -0.37856126411738256,
    0.264046087758132,    0.5395120600278595,   0.042501315642936285,  -0.49618192219817997,
    -0.20087042184211878, -0.1427436168489046,  0.021553149951354635,  0.2766680502864044,
    0.35322041432923224,  -0.17490463642315052, 0.6224613586187034,    0.36508102103528167,
    -0.3399351873632227,  -0.0718454545256002,  -0.021580795762607023,
};
const double kDecayWeightsSgdMomentumBuffer[] = {
    0.1819192576329438,    0.09436391244310634,   -0.1933436555353353,   -0.3142969950071013,
    0.1614250697494235,    0.0013873538885221214, -0.19077431568641684,  -0.11088729246631757,
    -0.07549950569344971,  -0.2745039545412973,   -0.2588262410250144,   0.062259142231659355,
    0.0056382981228299345, -0.18718257915643233,  -0.10126462705173318,  0.14349247238540278,
    -0.09962769847162589,  -0.04278023551417554,  0.2365805930118654,    0.40716651266741516,
    0.017829879358103234,  0.010876820518989727,  -0.007773166871985342, 0.0018263571630676633,
    0.007882263060880806,  -0.17422854133598342,  -0.17208428256344493,  0.0296925352644243,
    0.15765203079579312,   0.1463176340649651,    -0.2143137339737311,   -0.07706754942431514,
    0.19672675683554963,   0.19145944004743815,   -0.15993493654923038,  -0.2795504453191978,
    -0.05677246295890069,  0.18939366550463482,   0.11285685874385311,   -0.20624429419098864,
    0.018588735903055063,  -0.008265015877330462, -0.014726800728039608, 0.42736484155405796,
    0.6180151280682347,    0.1387403090457749,    -0.09676087669326196,  -0.35390041872301803,
    -0.3280435231618332,   -0.18700951289095363,  0.18700951289095366,
};
const double kDecayWeightsSgdLrs[] = {
    0.1,
    0.1,
    0.1,
    0.1,
};
const double kAccumulateParams[] = {
    0.4976888258392393,   0.46071166406415165,  -0.23638349561838798,  -0.5546780811418895,
    0.6073366845032329,   0.09383492900313861,  -0.546912384977581,    -0.3833221938852964,
    0.4657408198787927,   -0.27052805257709267, -0.5576191850043516,   -0.008010010502290952,
    0.029625044761048644, -0.5660547723514137,  -0.3269890007185666,   0.3949346204014888,
    -0.37669720198645246, -0.5918935215617082,  0.019419779330383597,  0.5459306719383543,
    -0.0906152058889107,  -0.1946499659651391,  -0.15639266504490976,  -0.005116582442182144,
    0.1571720557444987,   -0.45088792117792037, -0.49809650385086146,  0.1948831542670023,
    0.6065201012174252,   0.11209493473379499,  -0.5931905147207688,   -0.15997811788316388,
    0.5028832593902317,   0.42674544190366115,  -0.2612484780913338,   -0.42127106719016094,
    0.28469570836417807,  0.5966335635867697,   0.05080056354165905,   -0.553703312903193,
    -0.2005556088274644,  -0.1450002489033685,  0.022524976903074114,  0.31572941099244256,
    0.4271010133805336,   -0.15527907589305226, 0.6713634885650311,    0.36147317801829626,
    -0.40992847869888493, -0.0851365477085064,  -0.008289702579700842,
};
const double kAccumulateMomentumBuffer[] = {
    0.011796850427108704,  -0.046050977369686816, -0.08781187387631306,   -0.09889755647446904,
    -0.02711102416811936,  -0.01906614610032461,  -0.0043609146632189524, 0.011867709730051692,
    -0.17541572178338408,  -0.13732425271969817,  -0.05126147133746418,   0.05270841678473649,
    -0.013565853353194253, -0.0106120160596426,   -0.003951096246838769,  0.004090055158738628,
    0.02099533790226714,   0.11445900192241,      0.1679388435648935,     0.16275281551929324,
    0.01676281342705787,   0.00801039809047003,   -0.00573136557942147,   0.007619757723388281,
    0.005951782696026265,  -0.0181256515780705,   -0.007143348906047318,  -0.024893492517829525,
    -0.022764681113292263, 0.0918101264135579,    -0.014788453409878579,  -0.02014834419837097,
    0.020338553120941145,  0.039692515687635495,  -0.04631750892723989,   -0.10210146445316444,
    -0.11350688360720937,  -0.009675710868889395, 0.07023810860742086,    -0.015372302230999373,
    0.022383612116898165,  -0.005428643520512068, -0.013395021698190554,  0.18994661534634472,
    0.32084983248031496,   0.15646751514785434,   -0.18994661534634483,   -0.320849832480315,
    -0.1564675151478544,   -0.1435887142738627,   0.14358871427386274,
};
const double kAccumulateLrs[] = {
    0.1,
    0.1,
    0.1,
    0.1,
};
const double kOnecycleAdamParams[] = {
    0.5111724885516514,   0.5336650083062222,   -0.11007170982278502,  -0.45773006355955725,
    0.6409625423563189,   0.1154281373283849,   -0.5415495843234533,   -0.4178090581259094,
    0.4986985317108908,   -0.2341818603073892,  -0.5210952624611641,   -0.08705311530541329,
    0.07717214819758568,  -0.5157159252376072,  -0.28072300307302056,  0.4269330374500744,
    -0.37097716327415003, -0.6385379423346687,  -0.058372978620962024, 0.45285359556107724,
    -0.09122181580957371, -0.20271960396247965, -0.09270722161288114,  -0.06101937983563003,
    0.1415645766529618,   -0.4011881369032393,  -0.48773187091564796,  0.24544183986343454,
    0.6129614180197368,   0.06117846985882524,  -0.5747755649143033,   -0.07912189632879928,
    0.46977544052764936,  0.4082131266570872,   -0.22363511952167014,  -0.4171287696333619,
    0.3300671836922042,   0.6211882510652927,   0.015175858902760807,  -0.5367872820410384,
    -0.21651245992299067, -0.12069915001636165, 0.02170463240605443,   0.3632680361592014,
    0.45999193280063,     -0.15941792373028418, 0.6238248633982724,    0.3285822585981999,
    -0.40578963086165315, 0.00677545332508835,  -0.10020170361329553,
};
const double kOnecycleAdamExpAvg[] = {
    -0.0008139717817667414, -0.012096652823667063,  -0.01915362501137357,   -0.019519684929355734,
    -0.005680981513300559,  -0.004810526502736779,  -0.002259616185050562,  0.0010806430756396398,
    -0.03411592502928809,   -0.02715168395213021,   -0.010702578511641159,  0.009485245518081283,
    -0.0025041614207764826, 0.0006834587582070175,  0.0036323271297168686,  0.005312319132108944,
    0.0035491811859502905,  0.022900086020966298,   0.0342513319692472,     0.033637602243662024,
    0.0016521370152800562,  0.0030657035792846705,  2.5017894941937544e-05, 0.0020110132952532345,
    0.0018925543183011162,  -0.005153816429076672,  -0.0012221488685463316, -0.005600719197413507,
    -0.0038983169034872154, 0.011282643623865876,   -0.0027991798978071786, -0.005959937851963785,
    0.0025362607183982925,  0.00683660415583127,    -0.006904354345701491,  -0.00929672848749477,
    -0.01796196673639856,   -0.0027848500907777557, 0.010634941821056607,   -0.000586558281980731,
    0.0020635260258578996,  -0.002371348278218068,  0.00039722605638230327, 0.028131332785809093,
    0.04292658225023318,    0.0010160225707959865,  -0.028131332785809083,  -0.042926582250233165,
    -0.0010160225707959982, -0.01450409307130189,   0.01450409307130188,
};
const double kOnecycleAdamExpAvgSq[] = {
    2.4211384249140294e-05, 1.597179844643943e-05,  1.2311995476324751e-05, 1.7899265306869968e-05,
    1.7431402819801684e-05, 1.917251073283978e-05,  1.0574498465357292e-05, 2.602277715903501e-06,
    8.008258130133425e-05,  5.990219595048982e-05,  1.83353677572719e-05,   8.391628058492122e-06,
    2.615171088724558e-06,  2.2605065581209475e-06, 2.1417129819057634e-06, 2.410285965462198e-06,
    2.6466650298049266e-05, 3.326547200936262e-05,  4.005851636067186e-05,  3.818271924376024e-05,
    9.78149183990223e-06,   2.033242385726411e-06,  4.136088890592736e-08,  1.2227310579578093e-06,
    1.6630470878725228e-05, 4.699810286086899e-06,  1.2896589258556624e-06, 4.197171409669996e-06,
    9.21202910367261e-06,   4.289854388784291e-05,  8.05674539051164e-06,   4.420722448948539e-06,
    3.6470449844364465e-06, 1.3639455152725296e-05, 4.6545369720702325e-05, 9.202795448503955e-05,
    3.883528763434288e-05,  5.0199053670893904e-06, 1.744130753517061e-05,  3.563431267074193e-05,
    1.0141153842537595e-05, 5.640320625712248e-06,  1.770056732922888e-06,  0.0006639689907845486,
    0.00036431892613925863, 0.00019606970245336565, 0.0006639689907845486,  0.00036431892613925863,
    0.00019606970245336565, 2.0912014842389564e-05, 2.0912014842389554e-05,
};
const double kOnecycleAdamLrs[] = {
    0.0020000000000000018, 0.04096375524460961,  0.04859708886937616,   0.04058728269748815,
    0.02779920070613508,   0.014153049910434961, 0.0038320796917128202, 2e-07,
};
const double kOnecycleSgdLinearParams[] = {
    0.4767331941338756,   0.4607677816119073,   -0.21533523229145604,  -0.5199904359782168,
    0.6366652589823835,   0.12541481634485366,  -0.5241129479808262,   -0.377267706520389,
    0.5306905102584412,   -0.21394286832785941, -0.5291653397097632,   -0.01762725094601636,
    0.022767510150870356, -0.5874126767937666,  -0.3553863445006115,   0.36941784645953074,
    -0.3751817792586788,  -0.6307333571987973,  -0.046207442654445555, 0.47644154035211744,
    -0.101102579136568,   -0.20603032019306108, -0.15098502359066338,  -0.00015161000219058183,
    0.1593747089255214,   -0.43268556265380786, -0.49092687051044787,  0.2160219818669472,
    0.6276993147639095,   0.06185352745257175,  -0.5865236217764038,   -0.15740757379219278,
    0.4892815511669153,   0.42694639278142693,  -0.22789856958169172,  -0.3677200150963512,
    0.3306801365916575,   0.5864238043978166,   0.02413191975679102,   -0.5436420219598334,
    -0.1962790098890666,  -0.1480975605444831,  0.01586543692190485,   0.1897364538386849,
    0.2218207645647564,   -0.25236901169107473, 0.797356445718789,     0.5667534268340735,
    -0.3128385429008625,  -0.04673679388660592, -0.046689456401601305,
};
const double kOnecycleSgdLinearMomentumBuffer[] = {
    0.18984764205538462,   0.18472700624715999,   0.11507591252746296,   0.005225491807132055,
    7.869253454750869e-05, -0.004847343209685134, -0.008080062511834858, -0.008490183513742654,
    -0.05889765451871473,  -0.0289112847493802,   0.011174628565797694,  0.04735692262685991,
    0.019065189567806135,  0.15681327726584057,   0.23978197566860257,   0.2389879313995666,
    0.006960196669987416,  0.09206492225539936,   0.145008721772556,     0.14729680284743865,
    0.10687119388766958,   0.07238990928098596,   -0.04528396216310747,  -0.006090738925362703,
    0.0005490743409737925, -0.17336701993994505,  -0.04654052353950315,  -0.04750028185756567,
    -0.09882307747861804,  0.26543244623364376,   -0.06490728397150722,  -0.003176919563945224,
    0.032476724392796884,  -0.0457344250955408,   -0.004358953480262516, -0.0740236932600586,
    -0.10101358050668888,  -0.003795069387803353, 0.07659845969476797,   -0.01313959917728233,
    0.03254158266176475,   0.00585402822985074,   0.021710631942280838,  0.16347705230377646,
    0.2802956951333956,    -0.013441029718332765, -0.1634770523037764,   -0.2802956951333956,
    0.013441029718332775,  0.10597156748229128,   -0.10597156748229132,
};
const double kOnecycleSgdLinearLrs[] = {
    0.008,     0.2,
    0.1666668, 0.1333336,
    0.1000004, 0.06666720000000001,
    0.033334,  7.99999999995249e-07,
};
const double kPlateauMinLrs[] = {
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25,
};
const double kPlateauMaxLrs[] = {
    1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2,
};

constexpr int64_t kRows = 8;

// The model and data of tests/reference/formulas.py: Linear(4, 5), ReLU, Linear(5, 3), Tanh,
// Linear(3, 2); weight (l, i, j) 0.6 sin(1 + 3 l + 0.7 i + 1.3 j), bias 0.2 cos(2 + l + 0.9 i);
// x (r, c) 2 cos(0.5 + 1.7 r + 0.6 c); labels r % 2. float64 on the CPU.
Sequential reference_model() {
  Sequential model(4, {{5, Activation::kRelu}, {3, Activation::kTanh}, {2, Activation::kIdentity}},
                   DType::kFloat64);
  for (size_t l = 0; l < model.num_layers(); ++l) {
    Tensor w = model.weight(l), b = model.bias(l);
    for (int64_t i = 0; i < w.rows(); ++i) {
      for (int64_t j = 0; j < w.cols(); ++j) {
        w.data<double>()[i * w.cols() + j] = 0.6 * std::sin(1.0 + 3.0 * l + 0.7 * i + 1.3 * j);
      }
      b.data<double>()[i] = 0.2 * std::cos(2.0 + l + 0.9 * i);
    }
  }
  return model;
}

Dataset reference_data() {
  std::vector<double> x;
  std::vector<int32_t> labels;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < 4; ++c) x.push_back(2.0 * std::cos(0.5 + 1.7 * r + 0.6 * c));
    labels.push_back(static_cast<int32_t>(r % 2));
  }
  Dataset d;
  d.x = Tensor::from_vector(x, {kRows, 4});
  d.labels = Tensor::from_vector(labels, {kRows});
  d.name = "train";
  return d;
}

TrainerOptions options(OptimizerType type, double lr, int64_t batch) {
  TrainerOptions o;
  o.loss = Loss::kCrossEntropy;
  o.optimizer.type = type;
  o.optimizer.lr = lr;
  o.train.batch_size = batch;
  o.train.shuffle = false;
  return o;
}

template <size_t N>
void expect_values(const Tensor& actual, const double (&expected)[N], const std::string& what) {
  const std::vector<double> a = actual.to_vector<double>();
  ASSERT_EQ(a.size(), N) << what;
  for (size_t i = 0; i < N; ++i) {
    EXPECT_NEAR(a[i], expected[i], 1e-12 + 1e-11 * std::abs(expected[i]))
        << what << " [" << i << "]";
  }
}

// Trains `epochs` epochs at rate lr; returns the epochs' metrics.
std::vector<EpochMetrics> train(Sequential& model, const TrainerOptions& o, int epochs, double lr,
                                const ScheduleConfig* one_cycle = nullptr) {
  Trainer trainer(o, model, reference_data());
  if (one_cycle != nullptr) {
    trainer.set_one_cycle(one_cycle_plan(*one_cycle, lr, epochs * trainer.steps_per_epoch()));
  }
  std::vector<EpochMetrics> out;
  for (int e = 0; e < epochs; ++e) out.push_back(trainer.run_epoch(lr));
  return out;
}

// The state buffer `name` of a trainer's optimizer.
Tensor state_of(Trainer& trainer, const std::string& name) {
  for (const auto& [n, t] : trainer.optimizer().state()) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "no state " << name;
  return Tensor();
}

TEST(TrainingKnobs, LabelSmoothingTrainsAsCrossEntropyLossWithLabelSmoothing) {
  Sequential model = reference_model();
  TrainerOptions o = options(OptimizerType::kSgd, 0.1, 4);
  o.optimizer.momentum = 0.9;
  o.label_smoothing = 0.1;
  Trainer trainer(o, model, reference_data());
  for (int e = 0; e < 2; ++e) trainer.run_epoch(0.1);
  expect_values(model.params(), kLabelSmoothingParams, "params");
  expect_values(state_of(trainer, "momentum_buffer"), kLabelSmoothingMomentumBuffer, "momentum");
}

TEST(TrainingKnobs, ClipGradNormTrainsAsClipGradNorm) {
  Sequential model = reference_model();
  TrainerOptions o = options(OptimizerType::kAdam, 0.01, 4);
  o.train.clip_grad_norm = 0.5;
  Trainer trainer(o, model, reference_data());
  std::vector<EpochMetrics> epochs;
  for (int e = 0; e < 2; ++e) epochs.push_back(trainer.run_epoch(0.01));
  expect_values(model.params(), kClipGradNormParams, "params");
  expect_values(state_of(trainer, "exp_avg"), kClipGradNormExpAvg, "exp_avg");
  expect_values(state_of(trainer, "exp_avg_sq"), kClipGradNormExpAvgSq, "exp_avg_sq");
  // grad_norm: each epoch's mean of its two steps' norms before clipping (the first is clipped).
  EXPECT_NEAR(epochs[0].grad_norm, (kClipGradNormNorms[0] + kClipGradNormNorms[1]) / 2, 1e-12);
  EXPECT_NEAR(epochs[1].grad_norm, (kClipGradNormNorms[2] + kClipGradNormNorms[3]) / 2, 1e-12);
}

// train.layer_grad_norms: with one full batch an epoch, each epoch's record is the L2 norm of
// each layer's weight gradient of its one step (which the model's buffer still holds), taken
// before clipping.
TEST(TrainingKnobs, LayerGradNormsAreEachLayersWeightGradientNorm) {
  Sequential model = reference_model();
  TrainerOptions o = options(OptimizerType::kAdam, 0.01, kRows);
  o.train.clip_grad_norm = 0.01;
  o.train.layer_grad_norms = true;
  Trainer trainer(o, model, reference_data());
  for (int e = 0; e < 2; ++e) {
    const EpochMetrics m = trainer.run_epoch(0.01);
    ASSERT_EQ(m.layer_grad_norms.size(), model.num_layers());
    double squares = 0.0;
    for (size_t i = 0; i < model.num_layers(); ++i) {
      double layer = 0.0;
      for (const double g : model.weight_grad(i).to_vector<double>()) layer += g * g;
      EXPECT_GT(layer, 0.0);
      EXPECT_NEAR(m.layer_grad_norms[i], std::sqrt(layer), 1e-12 * std::sqrt(layer)) << i;
      squares += layer;
    }
    // The weights' part of the global norm, which clipping (far below it) did not shrink.
    EXPECT_LT(std::sqrt(squares), m.grad_norm);
    EXPECT_GT(std::sqrt(squares), 0.01);
  }
  o.train.layer_grad_norms = false;
  Trainer off(o, model, reference_data());
  EXPECT_TRUE(off.run_epoch(0.01).layer_grad_norms.empty());
}

TEST(TrainingKnobs, DecayWeightsTrainsAsPyTorchsTwoParameterGroups) {
  {
    Sequential model = reference_model();
    TrainerOptions o = options(OptimizerType::kAdamW, 0.01, 4);
    o.optimizer.weight_decay = 0.1;
    o.optimizer.decay = Decay::kWeights;
    Trainer trainer(o, model, reference_data());
    for (int e = 0; e < 2; ++e) trainer.run_epoch(0.01);
    expect_values(model.params(), kDecayWeightsAdamwParams, "adamw params");
    expect_values(state_of(trainer, "exp_avg"), kDecayWeightsAdamwExpAvg, "exp_avg");
    expect_values(state_of(trainer, "exp_avg_sq"), kDecayWeightsAdamwExpAvgSq, "exp_avg_sq");
  }
  {
    Sequential model = reference_model();
    TrainerOptions o = options(OptimizerType::kSgd, 0.1, 4);
    o.optimizer.momentum = 0.9;
    o.optimizer.weight_decay = 0.1;
    o.optimizer.decay = Decay::kWeights;
    Trainer trainer(o, model, reference_data());
    for (int e = 0; e < 2; ++e) trainer.run_epoch(0.1);
    expect_values(model.params(), kDecayWeightsSgdParams, "sgd params");
    expect_values(state_of(trainer, "momentum_buffer"), kDecayWeightsSgdMomentumBuffer, "momentum");
  }
}

// Batches of 2 rows, 4 per epoch, groups of 3: each epoch steps after batches 3 and 4 (the
// short group scaled by 1/3 all the same, as loss / 3 in PyTorch).
TEST(TrainingKnobs, AccumulateStepsTrainsAsLossOverKWithAShortLastGroup) {
  Sequential model = reference_model();
  TrainerOptions o = options(OptimizerType::kSgd, 0.1, 2);
  o.optimizer.momentum = 0.9;
  o.train.accumulate_steps = 3;
  Trainer trainer(o, model, reference_data());
  EXPECT_EQ(trainer.steps_per_epoch(), 2);
  for (int e = 0; e < 2; ++e) trainer.run_epoch(0.1);
  EXPECT_EQ(trainer.optimizer().steps(), 4);
  expect_values(model.params(), kAccumulateParams, "params");
  expect_values(state_of(trainer, "momentum_buffer"), kAccumulateMomentumBuffer, "momentum");
}

TEST(TrainingKnobs, OneCycleTrainsAsOneCycleLR) {
  {
    Sequential model = reference_model();
    ScheduleConfig s;
    s.type = ScheduleType::kOneCycle;
    s.max_lr = 0.05;
    const TrainerOptions o = options(OptimizerType::kAdam, 0.01, 2);
    train(model, o, 2, 0.01, &s);
    expect_values(model.params(), kOnecycleAdamParams, "adam params");
    const OneCyclePlan plan = one_cycle_plan(s, 0.01, 8);
    for (int64_t step = 0; step < 8; ++step) {
      EXPECT_NEAR(one_cycle_rates(plan, step).lr, kOnecycleAdamLrs[step], 1e-15) << step;
    }
  }
  {
    Sequential model = reference_model();
    ScheduleConfig s;
    s.type = ScheduleType::kOneCycle;
    s.max_lr = 0.2;
    s.anneal = Anneal::kLinear;
    s.pct_start = 0.25;
    TrainerOptions o = options(OptimizerType::kSgd, 0.1, 2);
    o.optimizer.momentum = 0.9;
    Trainer trainer(o, model, reference_data());
    trainer.set_one_cycle(one_cycle_plan(s, 0.1, 2 * trainer.steps_per_epoch()));
    for (int e = 0; e < 2; ++e) trainer.run_epoch(0.1);
    expect_values(model.params(), kOnecycleSgdLinearParams, "sgd params");
    expect_values(state_of(trainer, "momentum_buffer"), kOnecycleSgdLinearMomentumBuffer,
                  "momentum");
  }
}

TEST(TrainingKnobs, PlateauReducesAsReduceLROnPlateau) {
  const std::vector<double> losses = {1.0,  0.9,  0.9,  0.8999, 0.95, 0.7,
                                      0.71, 0.72, 0.73, 0.74,   0.75};
  const std::vector<double> accuracies = {0.5,  0.6,  0.6, 0.59, 0.61, 0.61,
                                          0.61, 0.61, 0.7, 0.7,  0.7};
  ScheduleConfig s;
  s.type = ScheduleType::kPlateau;
  s.factor = 0.5;
  s.patience = 1;
  s.cooldown = 1;
  s.min_lr = 0.2;
  PlateauState state = PlateauState::start(1.0);
  for (size_t i = 0; i < losses.size(); ++i) {
    state.step(s, losses[i]);
    EXPECT_EQ(state.lr, kPlateauMinLrs[i]) << "epoch " << i;
  }
  s.metric = Metric::kValAccuracy;
  state = PlateauState::start(1.0);
  for (size_t i = 0; i < accuracies.size(); ++i) {
    state.step(s, accuracies[i]);
    EXPECT_EQ(state.lr, kPlateauMaxLrs[i]) << "epoch " << i;
  }
}

// Every knob at once, stopped by a preemption signal part-way through an accumulation group and
// resumed: the same parameters, optimizer state and epoch figures as the uninterrupted run.
class TrainingKnobsResume : public test::TempDirTest {
 protected:
  TrainingKnobsResume() : TempDirTest("mlpx-knobs") {}
  Config config(const std::string& name, ScheduleType schedule) const {
    Config c = Config::from_json(R"({
      "device": "cpu",
      "data": {"source": "synthetic",
               "synthetic": {"train_samples": 300, "test_samples": 50, "features": 6, "classes": 3}},
      "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
      "loss": {"type": "cross_entropy", "label_smoothing": 0.1},
      "optimizer": {"type": "adamw", "lr": 0.01, "weight_decay": 0.05, "decay": "weights"},
      "train": {"epochs": 3, "batch_size": 32, "clip_grad_norm": 0.5, "accumulate_steps": 3,
                "layer_grad_norms": true}
    })");
    c.schedule.type = schedule;
    c.schedule.patience = 0;
    c.output.checkpoint = path(name + ".safetensors");
    c.output.log = path(name + ".jsonl");
    return c;
  }
};

volatile std::sig_atomic_t knobs_signal = 0;

TEST_F(TrainingKnobsResume, StoppedMidGroupAndResumedIsBitIdentical) {
  for (const ScheduleType schedule : {ScheduleType::kOneCycle, ScheduleType::kPlateau}) {
    SCOPED_TRACE(schedule_name(schedule));
    const Config whole_config = config("whole", schedule);
    const RunResult whole = run_training(whole_config);
    // 270 training rows: 9 batches an epoch, groups of 3; stop after batch 5 of epoch 2.
    const Config stopped = config("stopped", schedule);
    RunOptions options;
    knobs_signal = 0;
    options.stop_signal = &knobs_signal;
    options.callbacks.on_batch = [](const BatchProgress& p) {
      if (p.epoch == 2 && p.batch == 5) knobs_signal = SIGTERM;
      return true;
    };
    const RunResult first = run_training(stopped, options);
    ASSERT_TRUE(first.stopped);
    ASSERT_EQ(first.position.epoch_batch, 5);
    EXPECT_TRUE(load_checkpoint(stopped.output.checkpoint).progress.accumulated_grads.defined());
    knobs_signal = 0;
    options.callbacks.on_batch = nullptr;
    options.resume = stopped.output.checkpoint;
    options.history = first.epochs;
    const RunResult rest = run_training(stopped, options);
    const Checkpoint a = load_checkpoint(whole_config.output.checkpoint);
    const Checkpoint b = load_checkpoint(stopped.output.checkpoint);
    EXPECT_EQ(a.progress.step, b.progress.step);
    EXPECT_EQ(a.model.params().to_vector<float>(), b.model.params().to_vector<float>());
    ASSERT_EQ(a.optimizer_state.size(), b.optimizer_state.size());
    for (size_t i = 0; i < a.optimizer_state.size(); ++i) {
      EXPECT_EQ(a.optimizer_state[i].second.to_vector<float>(),
                b.optimizer_state[i].second.to_vector<float>());
    }
    ASSERT_EQ(rest.epochs.size(), 2u);
    for (size_t e = 0; e < 2; ++e) {
      EXPECT_EQ(rest.epochs[e].train_loss, whole.epochs[e + 1].train_loss);
      EXPECT_EQ(rest.epochs[e].grad_norm, whole.epochs[e + 1].grad_norm);
      EXPECT_EQ(rest.epochs[e].layer_grad_norms, whole.epochs[e + 1].layer_grad_norms);
      EXPECT_EQ(rest.epochs[e].layer_grad_norms.size(), 2u);
      EXPECT_EQ(rest.epochs[e].lr, whole.epochs[e + 1].lr);
    }
  }
}

// On a GPU (or the simulator) the step is captured once for the whole run although the rate
// changes every step (onecycle, from the device's step counter) and every epoch (the epoch
// rate in device memory), with clipping's norm and scale on the device: the same bits as plain
// launches, and the CPU's figures.
TEST(TrainingKnobs, GpuPerStepScheduleAndClippingCaptureTheStepOnce) {
  MLPX_REQUIRE_CUDA();
  Config c = Config::from_json(R"({
    "data": {"source": "synthetic",
             "synthetic": {"train_samples": 160, "test_samples": 0, "features": 8, "classes": 3}},
    "model": {"layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "identity"}]},
    "loss": {"type": "cross_entropy", "label_smoothing": 0.1},
    "optimizer": {"type": "adamw", "lr": 0.01, "weight_decay": 0.05, "decay": "weights"},
    "schedule": {"type": "onecycle"},
    "train": {"epochs": 3, "batch_size": 32, "clip_grad_norm": 0.5, "layer_grad_norms": true}
  })");
  const DataSplits data = load_data(c, 3);
  for (const bool cycle : {true, false}) {
    SCOPED_TRACE(cycle ? "onecycle" : "a new rate each epoch");
    auto run = [&](Device device, bool graph, int64_t* captures) {
      Config run_config = c;
      run_config.train.cuda_graph = graph;
      Sequential model(8, c.model.resolved_layers(), DType::kFloat32, device);
      model.init(c.model.init, c.model.init_std, c.seed);
      Trainer trainer(run_config, model, data.train.to(device));
      if (cycle) {
        trainer.set_one_cycle(
            one_cycle_plan(c.schedule, c.optimizer.lr, 3 * trainer.steps_per_epoch()));
      }
      std::vector<double> norms;  // each epoch's global norm, then its two layers'
      for (int e = 0; e < 3; ++e) {
        const EpochMetrics m = trainer.run_epoch(0.001 * (e + 1));
        norms.push_back(m.grad_norm);
        norms.insert(norms.end(), m.layer_grad_norms.begin(), m.layer_grad_norms.end());
      }
      if (captures != nullptr) *captures = trainer.graph_captures();
      return std::make_pair(model.params().to_vector<float>(), norms);
    };
    int64_t captures = 0;
    const auto graphed = run(Device::cuda(), true, &captures);
    EXPECT_EQ(captures, 1);
    const auto plain = run(Device::cuda(), false, nullptr);
    EXPECT_EQ(graphed.first, plain.first);
    EXPECT_EQ(graphed.second, plain.second);
    const auto cpu = run(Device::cpu(), false, nullptr);
    EXPECT_TRUE(test::all_close(graphed.first, cpu.first, 1e-4, 1e-3));
    ASSERT_EQ(graphed.second.size(), 9u);
    for (size_t e = 0; e < 9; ++e) EXPECT_NEAR(graphed.second[e], cpu.second[e], 1e-4) << e;
  }
}

// Dropout's masks read the run's step from the device: one capture serves every epoch, with the
// bits of plain launches (each batch its own mask, as the CPU draws it).
TEST(TrainingKnobs, GpuDropoutCapturesTheStepOncePerRun) {
  MLPX_REQUIRE_CUDA();
  Config c = Config::from_json(R"({
    "data": {"source": "synthetic",
             "synthetic": {"train_samples": 96, "test_samples": 0, "features": 8, "classes": 3}},
    "model": {"layers": [{"units": 16, "activation": "relu", "dropout": 0.3},
                         {"units": 3, "activation": "identity"}]},
    "optimizer": {"type": "sgd", "lr": 0.1},
    "train": {"epochs": 3, "batch_size": 32}
  })");
  const DataSplits data = load_data(c, 3);
  auto run = [&](Device device, bool graph, int64_t* captures) {
    Config run_config = c;
    run_config.train.cuda_graph = graph;
    Sequential model(8, c.model.resolved_layers(), DType::kFloat32, device);
    model.init(c.model.init, c.model.init_std, c.seed);
    Trainer trainer(run_config, model, data.train.to(device));
    std::vector<double> losses;
    for (int e = 0; e < 3; ++e) losses.push_back(trainer.run_epoch(0.1).train_loss);
    if (captures != nullptr) *captures = trainer.graph_captures();
    return std::make_pair(model.params().to_vector<float>(), losses);
  };
  int64_t captures = 0;
  const auto graphed = run(Device::cuda(), true, &captures);
  EXPECT_EQ(captures, 1);
  const auto plain = run(Device::cuda(), false, nullptr);
  EXPECT_EQ(graphed.first, plain.first);
  EXPECT_EQ(graphed.second, plain.second);
  const auto cpu = run(Device::cpu(), false, nullptr);
  EXPECT_TRUE(test::all_close(graphed.first, cpu.first, 1e-4, 1e-3));
  for (int e = 0; e < 3; ++e) EXPECT_NEAR(graphed.second[e], cpu.second[e], 1e-4) << e;
}

}  // namespace
}  // namespace mlpx
